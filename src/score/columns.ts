// The scores file's columns from the losses: one entry per row, in row order; scored rows get their losses
// (null past the levels they ran), DLC (their mean, or with score.refine the estimate a row settled with),
// loss0 and (with IFD) ifd; the others their reason. Every row its duplicate flags; outliers need every
// row's scores, so the caller adds them to a complete file.
import type { ScoreColumns } from "../contract/file.js";
import { emptyColumns } from "../contract/file.js";
import type { EncodedDataset } from "../text/encode.js";
import { NOT_RUN } from "./checkpoint.js";
import type { Estimate } from "./refine.js";

/**
 * The rows encodeDataset gave (a shard's own), scored or not. `losses`: `levels` values per encoded row, then
 * (IFD) the loss of its response alone; `estimates` (score.refine) gives each row's DLC and its sd (0: exact);
 * without it every row ran every level.
 */
export function scoreColumns(
  data: EncodedDataset,
  losses: Float64Array,
  shape: { levels: number; ifd: boolean },
  estimates: Map<number, Estimate | null> | null,
): ScoreColumns {
  const K = shape.levels;
  const C = K + (shape.ifd ? 1 : 0);
  const rows: { row: number; encoded?: number; status: string }[] = [
    ...data.encoded.map((e, m) => ({ row: e.row, encoded: m, status: e.status })),
    ...data.unscored,
  ];
  rows.sort((a, b) => a.row - b.row);
  const cols = emptyColumns(rows.length, K, !!data.ids, shape.ifd, !!estimates);
  rows.forEach((r, i) => {
    cols.row[i] = r.row;
    cols.status[i] = r.status;
    if (cols.id) cols.id[i] = data.ids![r.row]!;
    const duplicate = data.duplicates.get(r.row);
    if (duplicate) {
      cols.duplicateOf[i] = duplicate.of;
      cols.duplicatePairOf[i] = duplicate.pairOf ?? NaN;
    }
    const m = r.encoded;
    if (m === undefined) return;
    cols.tokens[i] = data.encoded[m]!.tokens;
    let sum = 0;
    for (let k = 0; k < K; k++) {
      const loss = losses[m * C + k]!;
      cols.losses[i * K + k] = loss === NOT_RUN ? NaN : loss;
      sum += loss;
    }
    const estimate = estimates ? estimates.get(m) : { dlc: sum / K, sd: 0 };
    // A non-finite loss (a broken model or an fp16 overflow) is no score: say so instead of ranking it.
    if (!estimate || !Number.isFinite(estimate.dlc)) {
      cols.status[i] = "non-finite-loss";
      return;
    }
    cols.dlc[i] = estimate.dlc;
    if (cols.dlcExact) cols.dlcExact[i] = estimate.sd === 0 ? 1 : 0;
    if (cols.dlcSd) cols.dlcSd[i] = estimate.sd === 0 ? NaN : estimate.sd;
    cols.loss0[i] = losses[m * C]!;
    if (cols.ifd) {
      const alone = losses[m * C + K]!;
      if (Number.isFinite(alone) && alone > 0) cols.ifd[i] = cols.loss0[i]! / alone;
    }
  });
  return cols;
}
