// Cumulative weight masking with PyTorch prune semantics, applied in place to one working copy.
//
// Level k zeroes the c(k) first entries of a fixed order: ascending |w| (l1) or a seeded random key
// (random), ties by position (matrix, then element). c(0) = 0, c(k+1) = c(k) + round(interval (N - c(k)))
// with Python's round. Scope `layer` ranks each matrix on its own, `global` all matrices together.
// Because the orders are fixed, the masks are nested and each level only zeroes more of the same copy.
//
// Thresholds come from a two-pass radix select over 32-bit keys (a 65536-bin histogram of the high half,
// then of the low half inside the bins the levels fall in), never from a sort: O(N) time, O(1) extra memory
// per matrix.

import type { ScoreConfig } from "../config/schema.js";
import { UserError } from "../util/errors.js";
import { pyRound } from "../util/math.js";

export type Scope = ScoreConfig["scope"];
export type Method = ScoreConfig["method"];

export interface MaskMatrix {
  name: string;
  /** The working copy, zeroed in place: fp32 values, or fp16 bit patterns. */
  data: Float32Array | Uint16Array;
}

export interface MaskOptions {
  /** The model file the weights come from, for messages. */
  file: string;
  scope: Scope;
  method: Method;
  interval: number;
  levels: number;
  seed: number;
}

/** c(0..levels-1): how many entries are masked at each level. */
export function cumulativeCounts(n: number, interval: number, levels: number): number[] {
  const c = [0];
  for (let k = 1; k < levels; k++) c.push(c[k - 1]! + pyRound(interval * (n - c[k - 1]!)));
  return c;
}

/** Weights zero at each level over all matrices, from the matrices' sizes alone (as MaskSchedule masks). */
export function maskedCounts(sizes: number[], opts: Pick<MaskOptions, "scope" | "interval" | "levels">): number[] {
  const units = opts.scope === "global" ? [sizes.reduce((a, b) => a + b, 0)] : sizes;
  return units.reduce(
    (acc, n) => cumulativeCounts(n, opts.interval, opts.levels).map((c, k) => c + acc[k]!),
    new Array<number>(opts.levels).fill(0),
  );
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** |h| of an fp16 bit pattern as the bits of the equal fp32 value, so fp16 and fp32 keys compare alike. */
export function halfMagnitudeBits(h: number): number {
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) {
    f32[0] = mant * 2 ** -24; // subnormal (or zero): exact in fp32
    return u32[0]!;
  }
  if (exp === 0x1f) return 0x7f800000 | (mant << 13); // inf / nan
  return ((exp + 112) << 23) | (mant << 13);
}

/** A 32-bit mix of (seed, matrix, element): the random method's key, reproducible without storing a permutation. */
export function randomKey(seed: number, matrix: number, i: number): number {
  let h = Math.imul(i ^ Math.imul(matrix + 1, 0x9e3779b1), 0x85ebca6b) ^ Math.imul(seed, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const CHUNK = 1 << 16;

/** Level thresholds of one unit: zero keys < below[k], and the first ties[k] keys equal to below[k]. */
interface UnitThresholds {
  matrices: number[];
  /** c(k) of the unit */
  counts: number[];
  below: number[];
  ties: number[];
}

export class MaskSchedule {
  private readonly units: UnitThresholds[];
  private readonly keyChunk = new Uint32Array(CHUNK);
  private applied = 0;
  constructor(
    private readonly matrices: MaskMatrix[],
    /** `restore` puts the unmasked weights back (read again from the model's files), for going back to level 0 (score.refine: boundary). */
    private readonly opts: MaskOptions & { restore?: () => Promise<void> },
  ) {
    const groups = opts.scope === "global" ? [matrices.map((_, i) => i)] : matrices.map((_, i) => [i]);
    this.units = groups.map((g) => this.thresholds(g));
  }

  /** Keys of `len` elements of matrix `m` from `start`, into `this.keyChunk`. */
  private keys(m: number, start: number, len: number): Uint32Array {
    const out = this.keyChunk;
    const data = this.matrices[m]!.data;
    if (this.opts.method === "random") {
      for (let i = 0; i < len; i++) out[i] = randomKey(this.opts.seed, m, start + i);
    } else if (data instanceof Float32Array) {
      const bits = new Uint32Array(data.buffer, data.byteOffset + 4 * start, len);
      for (let i = 0; i < len; i++) out[i] = bits[i]! & 0x7fffffff;
    } else {
      for (let i = 0; i < len; i++) out[i] = halfMagnitudeBits(data[start + i]! & 0x7fff);
    }
    return out;
  }

  private forEachKey(unit: number[], visit: (keys: Uint32Array, len: number, m: number, start: number) => void): void {
    for (const m of unit) {
      const n = this.matrices[m]!.data.length;
      for (let start = 0; start < n; start += CHUNK) {
        const len = Math.min(CHUNK, n - start);
        visit(this.keys(m, start, len), len, m, start);
      }
    }
  }

  private thresholds(unit: number[]): UnitThresholds {
    const n = unit.reduce((a, m) => a + this.matrices[m]!.data.length, 0);
    const counts = cumulativeCounts(n, this.opts.interval, this.opts.levels);
    // Pass 1: histogram of the high 16 bits.
    const high = new Float64Array(65536);
    this.forEachKey(unit, (keys, len) => {
      for (let i = 0; i < len; i++) high[keys[i]! >>> 16]!++;
    });
    // inf and NaN magnitudes start at 0x7f800000: weights without a usable order.
    if (this.opts.method === "l1" && high.subarray(0x7f80).some((c) => c > 0))
      throw new UserError(
        `${this.opts.file}: weights ${unit.map((m) => this.matrices[m]!.name).join(", ")} hold NaN or inf values, which cannot be ranked by magnitude`,
      );
    const cumHigh = new Float64Array(65537);
    for (let b = 0; b < 65536; b++) cumHigh[b + 1] = cumHigh[b]! + high[b]!;
    const binOf = (c: number) => {
      let lo = 0;
      let hi = 65535; // smallest b with cumHigh[b + 1] >= c
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cumHigh[mid + 1]! >= c) hi = mid;
        else lo = mid + 1;
      }
      return lo;
    };
    // Pass 2: histograms of the low 16 bits inside the bins where levels end.
    const levelBins = counts.map((c) => (c > 0 ? binOf(c) : -1));
    const low = new Map<number, Float64Array>();
    for (const b of levelBins) if (b >= 0 && !low.has(b)) low.set(b, new Float64Array(65536));
    this.forEachKey(unit, (keys, len) => {
      for (let i = 0; i < len; i++) {
        const h = low.get(keys[i]! >>> 16);
        if (h) h[keys[i]! & 0xffff]!++;
      }
    });
    const below: number[] = [];
    const ties: number[] = [];
    counts.forEach((c, k) => {
      if (c === 0) {
        below.push(0);
        ties.push(0);
        return;
      }
      const b = levelBins[k]!;
      const h = low.get(b)!;
      let seen = cumHigh[b]!;
      let l = 0;
      while (seen + h[l]! < c) seen += h[l++]!;
      below.push(b * 65536 + l);
      ties.push(c - seen);
    });
    return { matrices: unit, counts, below, ties };
  }

  /** Zeroes the working copy up to level `k`: each level only adds zeros; a lower level needs `restore`. */
  async applyLevel(k: number): Promise<void> {
    if (k < this.applied && this.opts.restore) {
      // Back to the unmasked weights, then forward again.
      await this.opts.restore();
      this.applied = 0;
    }
    if (k < this.applied) throw new Error(`level ${k} is below the applied level ${this.applied}: masks only grow`);
    for (let level = this.applied + 1; level <= k; level++) this.zero(level);
    this.applied = Math.max(this.applied, k);
  }

  private zero(level: number): void {
    for (const unit of this.units) {
      const threshold = unit.below[level]!;
      let ties = unit.ties[level]!;
      // l1 keys are read from the working copy, where earlier levels' ties already read 0: only the rest
      // of this level's ties remain to be zeroed. (Random keys do not change when a weight is zeroed.)
      const previous = level - 1;
      if (this.opts.method === "l1" && previous >= 1 && unit.below[previous] === threshold && threshold !== 0) ties -= unit.ties[previous]!;
      this.forEachKey(unit.matrices, (keys, len, m, start) => {
        const data = this.matrices[m]!.data;
        for (let i = 0; i < len; i++) {
          const key = keys[i]!;
          if (key < threshold) data[start + i] = 0;
          else if (key === threshold && ties > 0) {
            data[start + i] = 0;
            ties--;
          }
        }
      });
    }
  }
}
