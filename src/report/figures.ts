// The report's numbers, as pure functions of score columns and keep masks: each figure of the page is one of
// these, so report.json can hold exactly what is drawn and a test can recompute it from the outputs.

/** Ranks 1..n of the values, ties sharing their average rank (Spearman's convention). */
export function ranks(values: ArrayLike<number>): Float64Array {
  const order = Array.from({ length: values.length }, (_, i) => i).sort((a, b) => values[a]! - values[b]!);
  const out = new Float64Array(values.length);
  for (let i = 0; i < order.length;) {
    let j = i;
    while (j + 1 < order.length && values[order[j + 1]!] === values[order[i]!]) j++;
    for (let k = i; k <= j; k++) out[order[k]!] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return out;
}

/** Pearson's correlation; null when either side is constant or there are fewer than 2 values. */
export function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number | null {
  const n = x.length;
  if (n < 2) return null;
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) [mx, my] = [mx + x[i]!, my + y[i]!];
  [mx, my] = [mx / n, my / n];
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const [dx, dy] = [x[i]! - mx, y[i]! - my];
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : null;
}

/** Spearman's ρ over the rows where both scores are defined (not NaN), and how many rows that is. */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): { rho: number | null; rows: number } {
  const x: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < a.length; i++)
    if (!Number.isNaN(a[i]!) && !Number.isNaN(b[i]!)) {
      x.push(a[i]!);
      y.push(b[i]!);
    }
  return { rho: pearson(ranks(x), ranks(y)), rows: x.length };
}

/** |A ∩ B| / |A ∪ B| of two keep masks (1 = kept); 1 when both are empty. */
export function jaccard(
  a: Uint8Array,
  b: Uint8Array,
): { jaccard: number; intersection: number; union: number; only_a: number; only_b: number } {
  let intersection = 0;
  let union = 0;
  let onlyA = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] && b[i]) intersection++;
    if (a[i] || b[i]) union++;
    if (a[i] && !b[i]) onlyA++;
  }
  return { jaccard: union ? intersection / union : 1, intersection, union, only_a: onlyA, only_b: union - intersection - onlyA };
}

/** The q-quantile of sorted values (the lower of the two neighbours: an actual value). */
const quantile = (sorted: number[], q: number) => sorted[Math.floor(q * (sorted.length - 1))]!;

export interface Axis {
  /** The range drawn: the 1st to the 99th percentile of every scored row's value. */
  lo: number;
  hi: number;
  /** Scored rows outside the range (said on the axis): below lo, above hi. */
  below: number;
  above: number;
  /** Where the CDFs are evaluated: evenly spaced from lo to hi. */
  x: number[];
}

export const AXIS_POINTS = 81;

/** An axis for `values` that clips the long tails, so a few extreme rows do not squash the rest. */
export function clippedAxis(values: number[]): Axis {
  const sorted = [...values].sort((a, b) => a - b);
  if (!sorted.length) return { lo: 0, hi: 1, below: 0, above: 0, x: [0, 1] };
  const lo = quantile(sorted, 0.01);
  const hi = quantile(sorted, 0.99);
  const step = (hi - lo) / (AXIS_POINTS - 1);
  const x = hi > lo ? Array.from({ length: AXIS_POINTS }, (_, i) => (i === AXIS_POINTS - 1 ? hi : lo + i * step)) : [lo];
  return { lo, hi, below: sorted.filter((v) => v < lo).length, above: sorted.filter((v) => v > hi).length, x };
}

/** The empirical CDF of `values` at each point of `x`: the share of values ≤ x. */
export function cdfAt(values: number[], x: number[]): number[] {
  const sorted = [...values].sort((a, b) => a - b);
  let i = 0;
  return x.map((point) => {
    while (i < sorted.length && sorted[i]! <= point) i++;
    return sorted.length ? i / sorted.length : 0;
  });
}

/** At most `max` of `rows`, evenly spaced in row order (a scatter plot of a large dataset stays light). */
export function evenSample(rows: number[], max: number): number[] {
  if (rows.length <= max) return rows;
  return Array.from({ length: max }, (_, i) => rows[Math.floor((i * rows.length) / max)]!);
}

/** The `k` rows with the lowest and the highest score (ties by row order). */
export function extremes(rows: number[], score: ArrayLike<number>, k: number): { lowest: number[]; highest: number[] } {
  const sorted = [...rows].sort((a, b) => score[a]! - score[b]! || a - b);
  return { lowest: sorted.slice(0, k), highest: sorted.slice(-k).reverse() };
}

/** Text on one line, at most `max` characters ("…" marks a cut). */
export function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
