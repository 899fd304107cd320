import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";
import { uniformInt } from "pure-rand/distribution/uniformInt";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";

/** A seeded generator (pure-rand's xoroshiro128+, mutated in place). Same seed, same stream, every platform. */
export type Rng = ReturnType<typeof xoroshiro128plus>;

export function createRng(seed: number): Rng {
  return xoroshiro128plus(seed | 0);
}

/** Standard normal deviate (Box–Muller; one of the pair is used, simplicity over speed). */
export function normal(rng: Rng): number {
  const u1 = 1 - uniformFloat64(rng); // (0, 1]: log is finite
  const u2 = uniformFloat64(rng);
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** A uniformly random permutation of 0..n-1 (Fisher–Yates). */
export function permutation(rng: Rng, n: number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = uniformInt(rng, 0, i);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** A 32-bit seed for a named stream (group, interval, ratio) of the user's seed. */
export function seedFor(seed: number, salt: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < salt.length; i++) h = Math.imul(h ^ salt.charCodeAt(i), 0x01000193);
  return h | 0;
}
