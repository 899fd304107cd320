// The scores file: an Arrow IPC file with one row per input row (or per shard row).
//   row int64 | id utf8 (when configured) | dlc float64 (null: not scored) |
//   losses FixedSizeList<float32>[levels] (null: not scored) | tokens int32 | status utf8
// Its schema metadata (key "dlc_prune", JSON) says which model, data and masking produced it.
import { readFile } from "node:fs/promises";
import { Field, FixedSizeList, Float32, Float64, Int32, Int64, RecordBatch, Schema, Struct, Table, Utf8, makeData, tableFromIPC, tableToIPC, vectorFromArray, type Data } from "apache-arrow";
import { UserError, readingFile } from "../util/errors.js";
import { sha256, writeFileAtomic } from "../util/fs.js";

export const METADATA_KEY = "dlc_prune";

export interface ScoresMeta {
  tool: string;
  version: string;
  model: { path: string; sha256: Record<string, string> };
  data: { path: string; sha256: string; rows: number; format: string };
  template: string;
  levels: number;
  /** Share of maskable weights masked at each level. */
  sparsities: number[];
  maskable_weights: number;
  method: string;
  scope: string;
  interval: number;
  seed: number;
  include: string[];
  exclude: string[];
  max_tokens: number;
  batch_tokens: number;
  /** Identifies config + model + data: shards of one run share it. */
  fingerprint: string;
  /** Set in the file of one shard of a run (see src/shard). */
  shard: { index: number; count: number } | null;
}

/** Column data, one entry per row, in row order. */
export interface ScoreColumns {
  row: Float64Array | number[];
  id: (string | null)[] | null;
  /** NaN when not scored. */
  dlc: Float64Array;
  /** rows x levels, row-major; ignored where dlc is NaN. */
  losses: Float32Array;
  tokens: Int32Array;
  status: string[];
}

function validity(dlc: Float64Array): { bitmap: Uint8Array; nulls: number } {
  const bitmap = new Uint8Array(Math.ceil(dlc.length / 8));
  let nulls = 0;
  dlc.forEach((v, i) => {
    if (Number.isNaN(v)) nulls++;
    else bitmap[i >> 3]! |= 1 << (i & 7);
  });
  return { bitmap, nulls };
}

export function scoresToIpc(cols: ScoreColumns, meta: ScoresMeta): Uint8Array {
  const n = cols.dlc.length;
  const levels = meta.levels;
  const { bitmap, nulls } = validity(cols.dlc);
  const fields: Field[] = [new Field("row", new Int64(), false)];
  const utf8 = (values: (string | null)[]) => vectorFromArray(values, new Utf8()).data[0]!;
  const data: Data[] = [makeData({ type: new Int64(), length: n, data: BigInt64Array.from(Array.from(cols.row, (r) => BigInt(r))) })];
  if (cols.id) {
    fields.push(new Field("id", new Utf8(), true));
    data.push(utf8(cols.id));
  }
  const listType = new FixedSizeList(levels, new Field("item", new Float32(), false));
  const dlc = cols.dlc.map((v) => (Number.isNaN(v) ? 0 : v));
  fields.push(new Field("dlc", new Float64(), true), new Field("losses", listType, true), new Field("tokens", new Int32(), false), new Field("status", new Utf8(), false));
  data.push(
    makeData({ type: new Float64(), length: n, nullCount: nulls, nullBitmap: bitmap, data: dlc }),
    makeData({ type: listType, length: n, nullCount: nulls, nullBitmap: bitmap, child: makeData({ type: new Float32(), length: n * levels, data: cols.losses }) }),
    makeData({ type: new Int32(), length: n, data: cols.tokens }),
    utf8(cols.status),
  );
  const schema = new Schema(fields, new Map([[METADATA_KEY, JSON.stringify(meta)]]));
  const batch = new RecordBatch(schema, makeData({ type: new Struct(fields), length: n, nullCount: 0, children: data }));
  return tableToIPC(new Table(schema, [batch]), "file");
}

export async function writeScoresFile(path: string, cols: ScoreColumns, meta: ScoresMeta): Promise<void> {
  await writeFileAtomic(path, scoresToIpc(cols, meta));
}

export interface ScoresFile {
  meta: ScoresMeta;
  cols: ScoreColumns;
  /** sha256 of the file's bytes. */
  sha256: string;
}

export async function readScoresFile(path: string): Promise<ScoresFile> {
  const bytes = await readingFile(path, () => readFile(path));
  let table: Table;
  try {
    table = tableFromIPC(bytes);
  } catch (err) {
    throw new UserError(`${path}: not an Arrow scores file (${(err as Error).message})`);
  }
  const raw = table.schema.metadata.get(METADATA_KEY);
  const missing = ["row", "dlc", "losses", "tokens", "status"].filter((c) => !table.getChild(c));
  if (!raw || missing.length) throw new UserError(`${path}: not a dlc-prune scores file (${raw ? `no column ${missing.join(", ")}` : `no "${METADATA_KEY}" metadata`})`);
  const meta = JSON.parse(raw) as ScoresMeta;
  const n = table.numRows;
  const dlcVec = table.getChild("dlc")!;
  const dlc = new Float64Array(n);
  for (let i = 0; i < n; i++) dlc[i] = dlcVec.isValid(i) ? (dlcVec.get(i) as number) : NaN;
  const lossesVec = table.getChild("losses")!;
  const losses = new Float32Array(n * meta.levels);
  for (let i = 0; i < n; i++) {
    const v = lossesVec.get(i) as { toArray(): Float32Array } | null;
    if (v) losses.set(v.toArray(), i * meta.levels);
  }
  const idVec = table.getChild("id");
  return {
    meta,
    sha256: sha256(bytes),
    cols: {
      row: Float64Array.from(table.getChild("row")!.toArray() as BigInt64Array, Number),
      id: idVec ? (Array.from(idVec.toArray()) as (string | null)[]) : null,
      dlc,
      losses,
      tokens: Int32Array.from(table.getChild("tokens")!.toArray() as Int32Array),
      status: Array.from(table.getChild("status")!.toArray()) as string[],
    },
  };
}
