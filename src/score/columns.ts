// The scores file's columns from the per-level losses: one entry per row, in row order; scored rows get
// their losses and DLC (their mean), the others their reason.
import type { ScoreColumns } from "../scores/file.js";
import { emptyColumns } from "../scores/file.js";
import type { Shard } from "../scores/names.js";
import type { EncodedDataset } from "../text/encode.js";
import { ownsUnscoredRow, type ScorePlan } from "./plan.js";

/** A shard holds the rows of its batches and its share of the unscored rows. */
export function scoreColumns(data: EncodedDataset, losses: Float64Array, K: number, plan: ScorePlan, shard: Shard | null): ScoreColumns {
  const members = shard ? new Set(plan.batches.flatMap((b) => b.members)) : null;
  const rows: { row: number; encoded?: number; status: string }[] = [];
  data.encoded.forEach((e, m) => (!members || members.has(m)) && rows.push({ row: e.row, encoded: m, status: e.status }));
  for (const u of data.unscored) if (ownsUnscoredRow(shard, u.row)) rows.push({ row: u.row, status: u.status });
  rows.sort((a, b) => a.row - b.row);
  const cols = emptyColumns(rows.length, K, !!data.ids);
  rows.forEach((r, i) => {
    cols.row[i] = r.row;
    cols.status[i] = r.status;
    if (cols.id) cols.id[i] = data.ids![r.row]!;
    if (r.encoded === undefined) return;
    let sum = 0;
    for (let k = 0; k < K; k++) {
      sum += losses[r.encoded * K + k]!;
      cols.losses[i * K + k] = losses[r.encoded * K + k]!;
    }
    cols.tokens[i] = data.encoded[r.encoded]!.tokens;
    // A non-finite loss (a broken model or an fp16 overflow) is no score: say so instead of ranking it.
    if (Number.isFinite(sum)) cols.dlc[i] = sum / K;
    else cols.status[i] = "non-finite-loss";
  });
  return cols;
}
