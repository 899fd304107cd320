// The scores file's columns from the per-pass losses: one entry per row, in row order; scored rows get their
// losses, DLC (their mean), loss0 and (with IFD) ifd; the others their reason.
import type { ScoreColumns } from "../scores/file.js";
import { emptyColumns } from "../scores/file.js";
import type { Shard } from "../scores/names.js";
import type { EncodedDataset } from "../text/encode.js";
import { ownsUnscoredRow, type Pass, type ScorePlan } from "./plan.js";

/**
 * A shard holds the rows of its batches and its share of the unscored rows. `losses`: one column per pass
 * (src/score/plan.ts passesOf); the masking levels' columns give `losses`, `loss0` and DLC, the
 * responses-alone column (IFD) gives `ifd` = loss0 / loss(response alone).
 */
export function scoreColumns(data: EncodedDataset, losses: Float64Array, passes: Pass[], plan: ScorePlan, shard: Shard | null): ScoreColumns {
  const P = passes.length;
  const levelColumns = passes.flatMap((p, i) => (p.alone ? [] : [i]));
  const aloneColumn = passes.findIndex((p) => p.alone);
  const K = levelColumns.length;
  const members = shard ? new Set(plan.batches.flatMap((b) => b.members)) : null;
  const rows: { row: number; encoded?: number; status: string }[] = [];
  data.encoded.forEach((e, m) => (!members || members.has(m)) && rows.push({ row: e.row, encoded: m, status: e.status }));
  for (const u of data.unscored) if (ownsUnscoredRow(shard, u.row)) rows.push({ row: u.row, status: u.status });
  rows.sort((a, b) => a.row - b.row);
  const cols = emptyColumns(rows.length, K, !!data.ids, aloneColumn >= 0);
  rows.forEach((r, i) => {
    cols.row[i] = r.row;
    cols.status[i] = r.status;
    if (cols.id) cols.id[i] = data.ids![r.row]!;
    if (r.encoded === undefined) return;
    let sum = 0;
    levelColumns.forEach((c, k) => {
      const loss = losses[r.encoded! * P + c]!;
      sum += loss;
      cols.losses[i * K + k] = loss;
    });
    cols.tokens[i] = data.encoded[r.encoded]!.tokens;
    // A non-finite loss (a broken model or an fp16 overflow) is no score: say so instead of ranking it.
    if (!Number.isFinite(sum)) {
      cols.status[i] = "non-finite-loss";
      return;
    }
    cols.dlc[i] = sum / K;
    cols.loss0[i] = losses[r.encoded * P + levelColumns[0]!]!;
    if (cols.ifd) {
      const alone = losses[r.encoded * P + aloneColumn]!;
      if (Number.isFinite(alone) && alone > 0) cols.ifd[i] = cols.loss0[i]! / alone;
    }
  });
  return cols;
}
