// Length-packed batches under a token budget. Planned from the lengths of the whole dataset, so a row's
// batch (and so its exact floating-point result) does not depend on sharding or on where a run resumed.

export interface Batch {
  /** Indices into the encoded rows. */
  members: number[];
  /** Padded input length. */
  length: number;
}

/** Longest first (an out-of-memory shows at once), ties by index; each batch fills rows x length <= budget. */
export function planBatches(lengths: number[], budget: number): Batch[] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const batches: Batch[] = [];
  let current: Batch | undefined;
  for (const i of order) {
    if (current && (current.members.length + 1) * current.length <= budget) current.members.push(i);
    else batches.push((current = { members: [i], length: lengths[i]! }));
  }
  return batches;
}

/** Padded / total token slots of a plan. */
export function paddingRatio(batches: Batch[], lengths: number[]): number {
  let total = 0;
  let real = 0;
  for (const b of batches) {
    total += b.members.length * b.length;
    for (const i of b.members) real += lengths[i]!;
  }
  return total ? (total - real) / total : 0;
}
