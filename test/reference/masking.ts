// Deliberately simple reference for cumulative magnitude (L1-unstructured) masking, mirroring
// torch.nn.utils.prune applied repeatedly with a float amount: each step prunes
// round(amount * remaining) more entries (Python round, half to even). Used only by tests.

/** Python 3 round(x) for floats: ties go to the even neighbour. Keeps the sign of zero like rint. */
export function pyRound(x: number): number {
  if (!Number.isFinite(x)) return x;
  const f = Math.floor(x);
  const diff = x - f; // exact for |x| < 2^52
  let r: number;
  if (diff < 0.5) r = f;
  else if (diff > 0.5) r = f + 1;
  else r = f % 2 === 0 ? f : f + 1;
  return r === 0 && (x < 0 || Object.is(x, -0)) ? -0 : r;
}

/** c[0] = 0; c[k+1] = c[k] + round(interval * (n - c[k])) — torch's PruningContainer arithmetic. */
export function cumulativeCounts(n: number, interval: number, levels: number): number[] {
  const c: number[] = [];
  for (let k = 0; k < levels; k++) {
    if (k === 0) c.push(0);
    else {
      const prev = c[k - 1]!;
      c.push(prev + pyRound(interval * (n - prev)));
    }
  }
  return c;
}

export function countZeros(a: Float32Array): number {
  let z = 0;
  for (const v of a) if (v === 0) z++;
  return z;
}

interface Entry {
  abs: number;
  m: number; // matrix index
  i: number; // element index
}

function byMagnitude(a: Entry, b: Entry): number {
  return a.abs - b.abs || a.m - b.m || a.i - b.i;
}

/**
 * For each level k returns masked copies of all matrices: the c_k entries that come first in
 * (|w| ascending, then matrix index, then element index) order are zeroed. "layer" ranks and
 * counts each matrix on its own; "global" ranks the concatenation and counts from its total size.
 * Because the order is fixed, the masks are nested across levels (cumulative pruning).
 */
export function referenceMaskedLevels(
  matrices: Float32Array[],
  scope: "layer" | "global",
  interval: number,
  levels: number,
): Float32Array[][] {
  const entriesOf = (ms: number[]): Entry[] => {
    const e: Entry[] = [];
    for (const m of ms) matrices[m]!.forEach((v, i) => e.push({ abs: Math.abs(v), m, i }));
    return e.sort(byMagnitude);
  };
  // Groups of matrices ranked together, with their sorted entries and counts per level.
  const groups = scope === "layer" ? matrices.map((_, m) => entriesOf([m])) : [entriesOf(matrices.map((_, m) => m))];
  const countsPerGroup = groups.map((g) => cumulativeCounts(g.length, interval, levels));

  const out: Float32Array[][] = [];
  for (let k = 0; k < levels; k++) {
    const masked = matrices.map((m) => m.slice());
    groups.forEach((g, gi) => {
      const ck = countsPerGroup[gi]![k]!;
      for (let j = 0; j < ck; j++) masked[g[j]!.m]![g[j]!.i] = 0;
    });
    out.push(masked);
  }
  return out;
}
