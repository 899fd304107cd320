// Arithmetic several stages share.

/** Python 3's round(): halves go to the even neighbour (the method's counts are PyTorch's, rounded so). */
export function pyRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Elements of a tensor of shape `dims` (ONNX dims may come as bigint). */
export function elementCount(dims: readonly (number | bigint)[]): number {
  return dims.reduce<number>((a, d) => a * Number(d), 1);
}
