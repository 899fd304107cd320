// Seeded numbers for test data (no test-runner imports: scripts outside vitest use them too).

/** A seeded uniform [0, 1) generator (a 32-bit LCG): test data that is the same on every run. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
}
