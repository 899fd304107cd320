// score.refine: boundary: exact DLC only where the selection needs it.
//
// FlexRand only needs each row's side of its split, and a top-K strategy each row's side of its cut (the
// cuts, positions in the DLC order: src/contract/cuts.ts); rows far from every cut need no exact DLC. The rule:
// 1. Level 0 (and IFD) runs for every row, every level for a seeded calibration sample (score.refine_sample
//    of the rows, at least CALIBRATION_MIN).
// 2. Before level k, each row that ran level k-1 gets an estimate: the levels so far plus the rest predicted
//    from its level k-1 loss by a least-squares line fitted on the calibration rows, with the prediction's
//    standard error as its sd. The cuts' values are taken at their positions among every row's current
//    estimate (exact for rows with all levels). A row runs level k only if some cut's value lies within z sd of
//    its estimate, z = Φ⁻¹(score.refine_confidence); otherwise it settles, keeping that estimate.
// 3. Rows still undecided after the last level have their exact DLC.
// Every decision is a function of the seed and of the losses so far, so resume and shards repeat it exactly.
import { cutValues, type Cut } from "../contract/cuts.js";
import { NOT_RUN } from "./checkpoint.js";
import { normalQuantile } from "../util/math.js";
import { createRng, permutation } from "../util/rng.js";

/** The calibration sample's least size (a line fitted on fewer rows is too uncertain to settle any). */
export const CALIBRATION_MIN = 50;

/**
 * A row settles only if the calibration holds at least this many rows at most twice as long as its response:
 * the variance model is trusted only over lengths the calibration covers (very short responses, rare in a
 * sample, are far noisier than the fit over longer ones says).
 */
export const CALIBRATION_NEIGHBOURS = 10;

/**
 * A least-squares line y = a x + b, and its residuals' variance as a function of the row's scored tokens
 * t: alpha + beta / t (a loss is a mean over t tokens, so a short response's loss moves much more with the
 * masking than a long one's: one variance for all rows would be far too wide for long rows and too narrow
 * for short ones).
 */
interface Line {
  a: number;
  b: number;
  alpha: number;
  beta: number;
  n: number;
  xbar: number;
  sxx: number;
}

/** Least squares of y on x: slope and intercept; null without spread in x. */
function leastSquares(x: number[], y: number[]): { a: number; b: number; xbar: number; sxx: number } | null {
  const n = x.length;
  const xbar = x.reduce((acc, v) => acc + v, 0) / n;
  const ybar = y.reduce((acc, v) => acc + v, 0) / n;
  let sxx = 0;
  let sxy = 0;
  x.forEach((v, i) => {
    sxx += (v - xbar) ** 2;
    sxy += (v - xbar) * (y[i]! - ybar);
  });
  if (!(sxx > 0)) return null;
  const a = sxy / sxx;
  return { a, b: ybar - a * xbar, xbar, sxx };
}

function fitLine(x: number[], y: number[], tokens: number[]): Line | null {
  const n = x.length;
  if (n < 3) return null;
  const line = leastSquares(x, y);
  if (!line) return null;
  // Squared residuals (scaled to n - 2 degrees of freedom) against 1 / tokens; the variance never negative.
  const sq = x.map((v, i) => ((y[i]! - line.a * v - line.b) ** 2 * n) / (n - 2));
  const inv = tokens.map((t) => 1 / Math.max(t, 1));
  const spread = leastSquares(inv, sq);
  const mean = sq.reduce((acc, v) => acc + v, 0) / n;
  let [alpha, beta] = spread ? [spread.b, spread.a] : [mean, 0];
  if (beta < 0) [alpha, beta] = [mean, 0];
  if (alpha < 0) [alpha, beta] = [0, sq.reduce((acc, v, i) => acc + v / inv[i]!, 0) / n];
  return { a: line.a, b: line.b, alpha, beta, n, xbar: line.xbar, sxx: line.sxx };
}

export interface Estimate {
  dlc: number;
  /** 0 for an exact DLC. */
  sd: number;
}

export interface RefineOptions {
  levels: number;
  /** Values per row in the losses array (levels, then the response alone with IFD). */
  valuesPerRow: number;
  cuts: Cut[];
  confidence: number;
  sample: number;
  seed: number;
  /** Scored tokens of each encoded row (its response's, after truncation). */
  tokens: (m: number) => number;
}

export class Refiner {
  /** 1 for the calibration rows, by encoded index. */
  readonly calibration: Uint8Array;
  private readonly z: number;
  /** The calibration rows' scored tokens, ascending. */
  private readonly calibrationTokens: number[];

  /** `members`: the encoded rows this process scores; `count`: how many it encoded (a shard, its own). */
  constructor(
    private readonly members: number[],
    count: number,
    private readonly opts: RefineOptions,
  ) {
    this.z = normalQuantile(opts.confidence);
    this.calibration = new Uint8Array(count);
    // Nothing can settle at confidence 1: no calibration is needed, and every row runs every level.
    if (Number.isFinite(this.z)) {
      const sorted = [...members].sort((a, b) => a - b);
      const size = Math.min(sorted.length, Math.max(CALIBRATION_MIN, Math.ceil(opts.sample * sorted.length)));
      for (const i of permutation(createRng(opts.seed), sorted.length).subarray(0, size)) this.calibration[sorted[i]!] = 1;
    }
    this.calibrationTokens = members
      .filter((m) => this.calibration[m])
      .map((m) => opts.tokens(m))
      .sort((a, b) => a - b);
  }

  /** Whether the calibration covers responses as short as row m's (CALIBRATION_NEIGHBOURS). */
  private covered(m: number): boolean {
    const limit = 2 * this.opts.tokens(m);
    let n = 0;
    while (n < this.calibrationTokens.length && this.calibrationTokens[n]! <= limit) n++;
    return n >= CALIBRATION_NEIGHBOURS;
  }

  private loss(losses: Float64Array, m: number, k: number): number {
    return losses[m * this.opts.valuesPerRow + k]!;
  }

  /** The last level (at most `cap`) row m ran without a gap; -1 when none; null when a level it ran is not finite. */
  private through(losses: Float64Array, m: number, cap: number): number | null {
    let j = -1;
    while (j < cap && this.loss(losses, m, j + 1) !== NOT_RUN) {
      if (!Number.isFinite(this.loss(losses, m, j + 1))) return null;
      j++;
    }
    return j;
  }

  /** Per level j < K-1: the line predicting the sum of levels j+1.. from level j, on the calibration rows. */
  private lines(losses: Float64Array): (Line | null)[] {
    const K = this.opts.levels;
    const rows = this.members.filter((m) => this.calibration[m] && this.through(losses, m, K - 1) === K - 1);
    return Array.from({ length: K - 1 }, (_, j) => {
      const x = rows.map((m) => this.loss(losses, m, j));
      const y = rows.map((m) => {
        let rest = 0;
        for (let i = j + 1; i < K; i++) rest += this.loss(losses, m, i);
        return rest;
      });
      return fitLine(
        x,
        y,
        rows.map((m) => this.opts.tokens(m)),
      );
    });
  }

  /** Row m's DLC from its levels through min(its last, `cap`), the rest predicted; null for a row with no usable level 0. */
  private estimate(losses: Float64Array, m: number, cap: number, lines: (Line | null)[]): Estimate | null {
    const K = this.opts.levels;
    const j = this.through(losses, m, this.calibration[m] ? K - 1 : cap);
    if (j === null || j < 0) return null;
    let sum = 0;
    for (let i = 0; i <= j; i++) sum += this.loss(losses, m, i);
    if (j === K - 1) return { dlc: sum / K, sd: 0 };
    const line = lines[j];
    if (!line) return { dlc: NaN, sd: Infinity };
    const x = this.loss(losses, m, j);
    const variance = line.alpha + line.beta / Math.max(this.opts.tokens(m), 1);
    const se = Math.sqrt(variance * (1 + 1 / line.n + (x - line.xbar) ** 2 / line.sxx));
    return { dlc: (sum + line.a * x + line.b) / K, sd: se / K };
  }

  /** The rows that run level k (k >= 1) after the calibration: those that ran level k-1 and are near a cut. */
  undecided(k: number, losses: Float64Array): Uint8Array {
    const lines = this.lines(losses);
    const estimates = this.members.map((m) => this.estimate(losses, m, k - 1, lines));
    const values = cutValues(
      estimates.flatMap((e) => (e && Number.isFinite(e.dlc) ? [e.dlc] : [])),
      this.opts.cuts,
    );
    const out = new Uint8Array(this.calibration.length);
    this.members.forEach((m, i) => {
      const e = estimates[i];
      if (this.calibration[m] || !e || this.through(losses, m, k - 1) !== k - 1) return;
      // An estimate without a usable line (too few calibration rows) settles nothing.
      const near = !Number.isFinite(e.dlc) || !this.covered(m) || values.some((v) => Math.abs(e.dlc - v) <= this.z * e.sd);
      if (near) out[m] = 1;
    });
    return out;
  }

  /** Every member's final DLC (exact, or the estimate it settled with) and its sd; null where level 0 is not usable. */
  finalEstimates(losses: Float64Array): Map<number, Estimate | null> {
    const lines = this.lines(losses);
    return new Map(this.members.map((m) => [m, this.estimate(losses, m, this.opts.levels - 1, lines)]));
  }
}
