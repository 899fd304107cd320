// Scores files without a model run, for the stages after scoring (select, write, report): seeded DLC values
// for the rows of a real data file, with the statuses a test names, under a run record of that data.
import { fieldsSchema } from "../../src/config/schema.js";
import { emptyColumns, writeScoresFile } from "../../src/contract/file.js";
import { outlierFlags } from "../../src/contract/flags.js";
import { fingerprintOf, type RunRecord } from "../../src/contract/record.js";
import { sha256File } from "../../src/util/fs.js";
import { TOOL_NAME, TOOL_VERSION } from "../../src/version.js";
import { lcg } from "./fixtures.js";

export interface SyntheticScores {
  /** Unscored rows and their status ("empty-response", "bad-row: ..."); the others get a DLC. */
  unscored?: Record<number, string>;
  /** The id column (data.fields.id), when the selection should see one. */
  ids?: (string | null)[];
  seed?: number;
  levels?: number;
}

/** Writes scores for `rows` rows of `data` to `path`: DLC in [2, 8) from `seed`, every level's loss equal to it. */
export async function writeSyntheticScores(path: string, data: string, rows: number, opts: SyntheticScores = {}): Promise<void> {
  const K = opts.levels ?? 3;
  const rand = lcg(opts.seed ?? 1);
  const cols = emptyColumns(rows, K, !!opts.ids, false, false);
  for (let r = 0; r < rows; r++) {
    if (cols.id) cols.id[r] = opts.ids![r] ?? null;
    const status = opts.unscored?.[r];
    cols.status[r] = status ?? "ok";
    if (status) continue;
    cols.dlc[r] = 2 + 6 * rand();
    cols.loss0[r] = cols.dlc[r]!;
    cols.losses.fill(cols.dlc[r]!, r * K, (r + 1) * K);
    cols.tokens[r] = 5 + (r % 7);
  }
  cols.outlier = outlierFlags(cols, 3.5);
  const record: RunRecord = {
    tool: TOOL_NAME,
    version: TOOL_VERSION,
    data: { path: data, sha256: await sha256File(data), rows, format: "alpaca", fields: fieldsSchema.parse({}), on_error: "fail" },
    model: { path: "synthetic", sha256: {}, maskable_weights: 0 },
    tokens: { template: "alpaca", max_tokens: 512, truncated: "keep", sha256: "synthetic" },
    refine: null,
    masking: {
      levels: K,
      interval: 0.2,
      scope: "layer",
      method: "l1",
      seed: 0,
      include: [],
      exclude: [],
      sparsities: Array.from({ length: K }, (_, k) => 1 - 0.8 ** k),
    },
    ifd: false,
    outlier_k: 3.5,
    batch_tokens: 2048,
    block_rows: 1024,
    device: "cpu",
    environment: { node: process.version, onnxruntime: "synthetic", transformers: "synthetic" },
  };
  await writeScoresFile(path, cols, { ...record, fingerprint: fingerprintOf(record), shard: null });
}
