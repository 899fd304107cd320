// The score plan: length-packed batches under a token budget, planned from the lengths of the whole dataset,
// so a row's batch (and so its exact floating-point result) does not depend on sharding or on where a run
// resumed. A shard scores the batches b with b mod N = I (longest first: shards get similar work) and its
// share of the unscored rows. With IFD, the responses alone run as one more pass over the same batches (their
// members' responses, padded to the longest): shards and resume work alike, and no plan depends on sharding.
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

/** One pass over the plan's batches: a masking level over the rows, or (IFD) the unmasked model over the responses alone. */
export interface Pass {
  /** The weights' masking level (0: unmasked). */
  level: number;
  alone: boolean;
  /** Padded input length and non-padding input tokens of each batch in this pass. */
  lengths: number[];
  batchTokens: number[];
  tokens: number;
}

/**
 * The passes of a run, in order: level 0, the responses alone when `aloneLengths` is given (the unmasked
 * weights are still in place), then levels 1..K-1. `aloneLengths[m]`: the input length of row m's response
 * alone, or null when it has none.
 */
export function passesOf(plan: ScorePlan, levels: number, aloneLengths: (number | null)[] | null): Pass[] {
  const level = (k: number): Pass => ({ level: k, alone: false, lengths: plan.batches.map((b) => b.length), batchTokens: plan.batchTokens, tokens: plan.passTokens });
  const passes = [level(0)];
  if (aloneLengths) {
    const batchTokens = plan.batches.map((b) => b.members.reduce((a, m) => a + (aloneLengths[m] ?? 0), 0));
    const lengths = plan.batches.map((b) => Math.max(0, ...b.members.map((m) => aloneLengths[m] ?? 0)));
    passes.push({ level: 0, alone: true, lengths, batchTokens, tokens: batchTokens.reduce((a, b) => a + b, 0) });
  }
  for (let k = 1; k < levels; k++) passes.push(level(k));
  return passes;
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

/** "level 2/3", or "the responses-alone pass (IFD)", counting levels from 1. */
export function describePass(passes: Pass[], p: number): string {
  const pass = passes[p]!;
  return pass.alone ? "the responses-alone pass (IFD)" : `level ${pass.level + 1}/${passes.filter((x) => !x.alone).length}`;
}
