// The score plan: length-packed batches under a token budget, planned from the lengths of the whole dataset,
// so a row's batch (and so its exact floating-point result) does not depend on sharding or on where a run
// resumed. A shard scores the batches b with b mod N = I (longest first: shards get similar work) and its
// share of the unscored rows.
import type { Shard } from "../scores/names.js";

export interface Batch {
  /** Indices into the encoded rows. */
  members: number[];
  /** Padded input length. */
  length: number;
}

export interface ScorePlan {
  /** This process's batches, in order. */
  batches: Batch[];
  /** Non-padding input tokens of each batch, and of one pass over them all. */
  batchTokens: number[];
  passTokens: number;
  /** Rows in this process's batches. */
  passRows: number;
  /** Padded / total token slots of one pass. */
  padding: number;
}

/** Longest first (an out-of-memory shows at once), ties by index; each batch fills rows x length <= budget. */
function packBatches(lengths: number[], budget: number): Batch[] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const batches: Batch[] = [];
  let current: Batch | undefined;
  for (const i of order) {
    if (current && (current.members.length + 1) * current.length <= budget) current.members.push(i);
    else batches.push((current = { members: [i], length: lengths[i]! }));
  }
  return batches;
}

/** `lengths`: the model input length of each encoded row. */
export function planScoring(lengths: number[], budget: number, shard: Shard | null): ScorePlan {
  const batches = packBatches(lengths, budget).filter((_, b) => !shard || b % shard.count === shard.index);
  const batchTokens = batches.map((b) => b.members.reduce((a, m) => a + lengths[m]!, 0));
  const passTokens = batchTokens.reduce((a, b) => a + b, 0);
  const slots = batches.reduce((a, b) => a + b.members.length * b.length, 0);
  return { batches, batchTokens, passTokens, passRows: batches.reduce((a, b) => a + b.members.length, 0), padding: slots ? (slots - passTokens) / slots : 0 };
}

/** An unscored row (no batch) belongs to shard row mod N. */
export function ownsUnscoredRow(shard: Shard | null, row: number): boolean {
  return !shard || row % shard.count === shard.index;
}
