// The scores file: an Arrow IPC file with one row per input row (or per shard row).
//   row int64 | id utf8 (when configured) | dlc float64 (null: not scored) |
//   losses FixedSizeList<float32>[levels] (null: not scored) | tokens int32 | status utf8 |
//   loss0 float64 (the unmasked level's loss: perplexity filtering's score; null: not scored) |
//   ifd float64 (with score.ifd: loss0 / loss of the response alone; null: none) |
//   dlc_exact bool, dlc_sd float64 (with score.refine: boundary: whether the row ran every level, else the
//   sd of its estimated DLC; its losses are null past the levels it ran) |
//   duplicate bool, duplicate_of int64, duplicate_pair_of int64 (the row's response repeats row duplicate_of's,
//   normalized as src/text/duplicates says; its prompt and response repeat row duplicate_pair_of's) |
//   outlier bool (DLC or loss0 an outlier among the scored rows, src/contract/flags; in complete files only:
//   a shard has not seen the other rows' scores, the merge computes it)
// Its schema metadata (key "dlc_prune", JSON) is the run record (src/contract/record): which data, model,
// tokens and masking produced it, with the run's fingerprint and the shard the file holds.
import { lstat, readFile } from "node:fs/promises";
import {
  Bool,
  Field,
  FixedSizeList,
  Float32,
  Float64,
  Int32,
  Int64,
  RecordBatch,
  Schema,
  Struct,
  Table,
  Utf8,
  makeData,
  tableFromIPC,
  tableToIPC,
  vectorFromArray,
  type Data,
} from "apache-arrow";
import { z } from "zod";
import { UserError, isSystemError, readingFile } from "../util/errors.js";
import { sha256, writeFileAtomic } from "../util/fs.js";
import { parseJson } from "../util/json.js";
import { TOOL_NAME, TOOL_VERSION } from "../version.js";
import { otherVersionOf, runRecordSchema } from "./record.js";

export const METADATA_KEY = "dlc_prune";

/** The file's metadata: the run record, its fingerprint, and which shard of the run this file holds. */
const scoresMetaSchema = runRecordSchema.extend({
  /** Identifies the run (src/contract/record): shards of one run share it. */
  fingerprint: z.string(),
  shard: z.object({ index: z.number().int().nonnegative(), count: z.number().int().positive() }).nullable(),
});

export type ScoresMeta = z.infer<typeof scoresMetaSchema>;

/** Column data, one entry per row, in row order. */
export interface ScoreColumns {
  row: Float64Array;
  id: (string | null)[] | null;
  /** NaN when not scored. */
  dlc: Float64Array;
  /** rows x levels, row-major; ignored where dlc is NaN. */
  losses: Float32Array;
  tokens: Int32Array;
  status: string[];
  /** The unmasked level's loss (full precision); NaN when not scored. */
  loss0: Float64Array;
  /** IFD, when the run computed it; NaN where a row has none. */
  ifd: Float64Array | null;
  /** score.refine: boundary: 1 where DLC is exact (every level ran), 0 where it is an estimate; and that estimate's sd (NaN when exact). */
  dlcExact: Uint8Array | null;
  dlcSd: Float64Array | null;
  /** The first row with the same (normalized) response; NaN when none is earlier. */
  duplicateOf: Float64Array;
  /** The first row with the same prompt and response; NaN when none is earlier. */
  duplicatePairOf: Float64Array;
  /** 1 where DLC or loss0 is an outlier (src/contract/flags); null in a shard's file, which cannot tell. */
  outlier: Uint8Array | null;
}

/** The scores a selection can rank by (select.by). */
export type ScoreName = "dlc" | "loss0" | "ifd";

/** Columns of `n` rows, none scored yet: rows 0..n-1, ids when `withIds`, an ifd column when `withIfd`, the refinement's with `refined`. */
export function emptyColumns(n: number, levels: number, withIds: boolean, withIfd: boolean, refined: boolean): ScoreColumns {
  return {
    row: Float64Array.from({ length: n }, (_, i) => i),
    id: withIds ? new Array<string | null>(n).fill(null) : null,
    dlc: new Float64Array(n).fill(NaN),
    losses: new Float32Array(n * levels),
    tokens: new Int32Array(n),
    status: new Array<string>(n).fill(""),
    loss0: new Float64Array(n).fill(NaN),
    ifd: withIfd ? new Float64Array(n).fill(NaN) : null,
    dlcExact: refined ? new Uint8Array(n) : null,
    dlcSd: refined ? new Float64Array(n).fill(NaN) : null,
    duplicateOf: new Float64Array(n).fill(NaN),
    duplicatePairOf: new Float64Array(n).fill(NaN),
    outlier: null,
  };
}

/** A float64 column with nulls where the values are NaN. */
function nullableFloat64(values: Float64Array): Data {
  const { bitmap, nulls } = validity(values);
  return makeData({
    type: new Float64(),
    length: values.length,
    nullCount: nulls,
    nullBitmap: bitmap,
    data: values.map((v) => (Number.isNaN(v) ? 0 : v)),
  });
}

/** Booleans (0/1 per row) as Arrow's bit-packed values. */
function packBits(values: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(values.length / 8));
  values.forEach((v, i) => v && (out[i >> 3]! |= 1 << (i & 7)));
  return out;
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

/** Row numbers, null where NaN. */
function nullableInt64(rows: Float64Array): Data {
  const { bitmap, nulls } = validity(rows);
  const data = BigInt64Array.from(rows, (r) => BigInt(Number.isNaN(r) ? 0 : r));
  return makeData({ type: new Int64(), length: rows.length, nullCount: nulls, nullBitmap: bitmap, data });
}

/** duplicate, duplicate_of, duplicate_pair_of, and (a complete file's) outlier. */
function flagColumns(cols: ScoreColumns): { fields: Field[]; data: Data[] } {
  const n = cols.dlc.length;
  const fields = [
    new Field("duplicate", new Bool(), false),
    new Field("duplicate_of", new Int64(), true),
    new Field("duplicate_pair_of", new Int64(), true),
  ];
  const data = [
    // A duplicate is a row with a duplicate_of: the same bits as its validity.
    makeData({ type: new Bool(), length: n, data: validity(cols.duplicateOf).bitmap }),
    nullableInt64(cols.duplicateOf),
    nullableInt64(cols.duplicatePairOf),
  ];
  if (cols.outlier) {
    fields.push(new Field("outlier", new Bool(), false));
    data.push(makeData({ type: new Bool(), length: n, data: packBits(cols.outlier) }));
  }
  return { fields, data };
}

export function scoresToIpc(cols: ScoreColumns, meta: ScoresMeta): Uint8Array {
  const n = cols.dlc.length;
  const levels = meta.masking.levels;
  const { bitmap, nulls } = validity(cols.dlc);
  const fields: Field[] = [new Field("row", new Int64(), false)];
  const utf8 = (values: (string | null)[]) => vectorFromArray(values, new Utf8()).data[0]!;
  const data: Data[] = [makeData({ type: new Int64(), length: n, data: BigInt64Array.from(Array.from(cols.row, (r) => BigInt(r))) })];
  if (cols.id) {
    fields.push(new Field("id", new Utf8(), true));
    data.push(utf8(cols.id));
  }
  // Levels a refined row skipped are null inside its list (NaN in memory); without refinement there are none.
  const skipped = validity(Float64Array.from(cols.losses));
  const itemNullable = skipped.nulls > 0;
  const listType = new FixedSizeList(levels, new Field("item", new Float32(), itemNullable));
  const items = itemNullable
    ? makeData({
        type: new Float32(),
        length: n * levels,
        nullCount: skipped.nulls,
        nullBitmap: skipped.bitmap,
        data: cols.losses.map((v) => (Number.isNaN(v) ? 0 : v)),
      })
    : makeData({ type: new Float32(), length: n * levels, data: cols.losses });
  fields.push(
    new Field("dlc", new Float64(), true),
    new Field("losses", listType, true),
    new Field("tokens", new Int32(), false),
    new Field("status", new Utf8(), false),
    new Field("loss0", new Float64(), true),
  );
  data.push(
    nullableFloat64(cols.dlc),
    makeData({ type: listType, length: n, nullCount: nulls, nullBitmap: bitmap, child: items }),
    makeData({ type: new Int32(), length: n, data: cols.tokens }),
    utf8(cols.status),
    nullableFloat64(cols.loss0),
  );
  if (cols.ifd) {
    fields.push(new Field("ifd", new Float64(), true));
    data.push(nullableFloat64(cols.ifd));
  }
  if (cols.dlcExact && cols.dlcSd) {
    // Null where the row has no DLC.
    fields.push(new Field("dlc_exact", new Bool(), true), new Field("dlc_sd", new Float64(), true));
    data.push(
      makeData({ type: new Bool(), length: n, nullCount: nulls, nullBitmap: bitmap, data: packBits(cols.dlcExact) }),
      nullableFloat64(cols.dlcSd),
    );
  }
  const flags = flagColumns(cols);
  fields.push(...flags.fields);
  data.push(...flags.data);
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

const ARROW_MAGIC = "ARROW1";

export async function readScoresFile(path: string): Promise<ScoresFile> {
  const bytes = await readingFile(path, () => readFile(path));
  // An Arrow IPC file starts and ends with its magic: a cut-off file is told before decoding.
  const magic = (at: number) => Buffer.from(bytes.subarray(at, at + ARROW_MAGIC.length)).toString("latin1") === ARROW_MAGIC;
  if (bytes.byteLength < 2 * ARROW_MAGIC.length || !magic(0) || !magic(bytes.byteLength - ARROW_MAGIC.length))
    throw new UserError(`${path}: truncated or not an Arrow file`);
  try {
    return decodeScores(bytes, path);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${path}: truncated or not an Arrow scores file (${(err as Error).message.split("\n")[0]})`);
  }
}

/** A scores file another version of dlc-prune wrote: ours, so it may be replaced, but this version does not read it. */
export class OtherVersionError extends UserError {
  constructor(
    message: string,
    readonly version: string,
  ) {
    super(message);
  }
}

function decodeScores(bytes: Uint8Array, path: string): ScoresFile {
  const table = tableFromIPC(bytes);
  const meta = scoresMetaOf(table, path);
  return { meta, sha256: sha256(bytes), cols: columnsOf(table, meta) };
}

/**
 * Files of 0.3.0 and of builds since have this version's string: what one lacks tells it, a file of ours to be
 * rescored (and replaced): the flags (0.3.0), then block_rows (batches were packed over all rows).
 */
function formatLacks(table: Table, meta: { block_rows?: number }): { name: string; what: string } | null {
  if (!table.getChild("duplicate")) return { name: "flags", what: "the duplicate and outlier flags (no column duplicate)" };
  if (meta.block_rows === undefined) return { name: "block_rows", what: "score.block_rows (its batches were packed over all rows)" };
  return null;
}

/** The file's run record, refused unless this version wrote it and every column the record implies is there. */
function scoresMetaOf(table: Table, path: string): ScoresMeta {
  const raw = table.schema.metadata.get(METADATA_KEY);
  const version = raw === undefined ? undefined : otherVersionOf(raw);
  if (version)
    throw new OtherVersionError(
      `${path}: scores of ${TOOL_NAME} ${version}, which this version (${TOOL_VERSION}) does not read; rescore`,
      version,
    );
  if (raw === undefined) throw new UserError(`${path}: not a dlc-prune scores file (no "${METADATA_KEY}" metadata)`);
  const marker = parseJson(z.object({ tool: z.literal(TOOL_NAME), version: z.string(), block_rows: z.number().optional() }), raw);
  const lacks = "value" in marker ? formatLacks(table, marker.value) : null;
  if (lacks)
    throw new OtherVersionError(
      `${path}: scores of ${TOOL_NAME} ${TOOL_VERSION} from before ${lacks.what}; rescore`,
      `${TOOL_VERSION} (without ${lacks.name})`,
    );
  const parsed = parseJson(scoresMetaSchema, raw);
  if ("why" in parsed)
    throw new UserError(`${path}: not a scores file of this version of ${TOOL_NAME} (its "${METADATA_KEY}" metadata: ${parsed.why})`);
  const meta = parsed.value;
  const missing = [
    "row",
    "dlc",
    "losses",
    "tokens",
    "status",
    "loss0",
    ...(meta.ifd ? ["ifd"] : []),
    ...(meta.refine ? ["dlc_exact", "dlc_sd"] : []),
    "duplicate_of",
    "duplicate_pair_of",
    ...(meta.shard ? [] : ["outlier"]),
  ].filter((c) => !table.getChild(c));
  if (missing.length) throw new UserError(`${path}: not a dlc-prune scores file (no column ${missing.join(", ")})`);
  return meta;
}

/** The columns in memory: nulls as NaN (a refined row's skipped levels too), dlc_exact as 0/1. */
function columnsOf(table: Table, meta: ScoresMeta): ScoreColumns {
  const n = table.numRows;
  const float64 = (name: string) => {
    const vec = table.getChild(name)!;
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = vec.isValid(i) ? (vec.get(i) as number) : NaN;
    return out;
  };
  const K = meta.masking.levels;
  const lossesVec = table.getChild("losses")!;
  const losses = new Float32Array(n * K);
  for (let i = 0; i < n; i++) {
    const v = lossesVec.get(i) as { toArray(): Float32Array; isValid(k: number): boolean } | null;
    if (!v) continue;
    losses.set(v.toArray(), i * K);
    // A level a refined row skipped is null.
    if (meta.refine) for (let k = 0; k < K; k++) if (!v.isValid(k)) losses[i * K + k] = NaN;
  }
  const bools = (name: string) => {
    const vec = table.getChild(name)!;
    return Uint8Array.from({ length: n }, (_, i) => (vec.get(i) ? 1 : 0));
  };
  const rows = (name: string) => {
    const vec = table.getChild(name)!;
    return Float64Array.from({ length: n }, (_, i) => (vec.isValid(i) ? Number(vec.get(i) as bigint) : NaN));
  };
  const idVec = table.getChild("id");
  return {
    row: Float64Array.from(table.getChild("row")!.toArray() as BigInt64Array, Number),
    id: idVec ? (Array.from(idVec.toArray()) as (string | null)[]) : null,
    dlc: float64("dlc"),
    losses,
    tokens: Int32Array.from(table.getChild("tokens")!.toArray() as Int32Array),
    status: Array.from(table.getChild("status")!.toArray()) as string[],
    loss0: float64("loss0"),
    ifd: meta.ifd ? float64("ifd") : null,
    dlcExact: meta.refine ? bools("dlc_exact") : null,
    dlcSd: meta.refine ? float64("dlc_sd") : null,
    duplicateOf: rows("duplicate_of"),
    duplicatePairOf: rows("duplicate_pair_of"),
    outlier: meta.shard ? null : bools("outlier"),
  };
}

/**
 * What is at `path`, where scores are about to be written: nothing, a scores file (reusable when its run is
 * the same), or the scores of another version of dlc-prune (replaced). dlc-prune replaces only its own scores
 * files, so anything else there (the data, a user's file) stops the run, naming `key`.
 */
export async function existingScoresFile(path: string, key: string): Promise<{ scores?: ScoresFile; otherVersion?: string } | undefined> {
  try {
    await lstat(path);
  } catch (err) {
    if (isSystemError(err) && err.code === "ENOENT") return undefined;
    throw err;
  }
  try {
    return { scores: await readScoresFile(path) };
  } catch (err) {
    if (err instanceof OtherVersionError) return { otherVersion: err.version };
    if (!(err instanceof UserError)) throw err;
    throw new UserError(
      `${key} ${path} exists and is not a dlc-prune scores file (${err.message.slice(path.length + 2)}); dlc-prune never replaces it: choose another ${key}`,
    );
  }
}
