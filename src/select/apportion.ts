// Stratified selection rounds once, for the whole data, and then shares the rows out among the groups:
// rounding per group would drop every group smaller than 1/ratio (12 groups of 2 rows keep nothing at 0.3).
//
// The share-out is Webster's divisor method (Sainte-Laguë), one row at a time to the group with the highest
// size / (2 x rows so far + 1): each group gets its proportional share rounded half up, small groups are not
// systematically rounded away, and — unlike largest remainders, which can take a row from a group when the
// total grows (the Alabama paradox) — a larger total always keeps the rows of a smaller one, so the nested
// draws of several ratios stay nested. Ties go to the group first in a seeded order.

/** Rows per group for `total`: weights are the group sizes, caps the most a group can give. */
export function apportion(total: number, weights: number[], caps: number[], tieRank: number[]): number[] {
  const seats = weights.map(() => 0);
  // A binary max-heap of groups by priority weight / (2 seats + 1), compared exactly as integers.
  const before = (a: number, b: number) => {
    const d = weights[a]! * (2 * seats[b]! + 1) - weights[b]! * (2 * seats[a]! + 1);
    return d > 0 || (d === 0 && tieRank[a]! < tieRank[b]!);
  };
  const heap = weights.map((_, g) => g).filter((g) => caps[g]! > 0 && weights[g]! > 0);
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let top = i;
      if (l < heap.length && before(heap[l]!, heap[top]!)) top = l;
      if (r < heap.length && before(heap[r]!, heap[top]!)) top = r;
      if (top === i) return;
      [heap[i], heap[top]] = [heap[top]!, heap[i]!];
      i = top;
    }
  };
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i);
  for (let given = 0; given < total && heap.length; given++) {
    const g = heap[0]!;
    seats[g]!++;
    if (seats[g] === caps[g]) {
      heap[0] = heap[heap.length - 1]!;
      heap.pop();
    }
    down(0);
  }
  return seats;
}
