// IEEE binary16 decoding, written out from the format's definition: the reference the fp16 code is checked with.

/** The value of an fp16 bit pattern. */
export function decodeHalf(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  return e === 0x1f ? (m ? NaN : s * Infinity) : s * (e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15));
}
