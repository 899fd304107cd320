// The score plan: length-packed batches under a token budget. The rows are cut into blocks of score.block_rows
// consecutive rows and each block is packed on its own, so a row's batch (and so its exact floating-point
// result) depends on its block alone: not on sharding nor on where a run resumed. Shard I of N owns the blocks
// k with k mod N = I (ownsRow) and tokenizes only their rows. Every pass (a level, IFD's responses alone, a
// refinement's subset of rows) runs the same batches, keeping the members it needs.
import type { Shard } from "../contract/names.js";

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

/**
 * Which rows a pass runs: all of the plan's rows, or (score.refine: boundary, src/score/refine.ts) the
 * calibration sample, or the rows whose side of a boundary is still undecided.
 */
export type PassRows = "all" | "calibration" | "undecided";

/** One pass over the plan's batches: a masking level, or (IFD) the unmasked model over the responses alone. */
export interface Pass {
  /** The weights' masking level (0: unmasked). */
  level: number;
  alone: boolean;
  rows: PassRows;
}

/**
 * The passes of a run, in order: level 0, the responses alone with `ifd` (the unmasked weights are still in
 * place), then levels 1..K-1: over all rows, or with `refine` first over the calibration sample, then over
 * the rows still undecided before each level.
 */
export function passesOf(levels: number, ifd: boolean, refine: boolean): Pass[] {
  const passes: Pass[] = [{ level: 0, alone: false, rows: "all" }];
  if (ifd) passes.push({ level: 0, alone: true, rows: "all" });
  const later = (rows: PassRows) => Array.from({ length: levels - 1 }, (_, i): Pass => ({ level: i + 1, alone: false, rows }));
  passes.push(...(refine ? [...later("calibration"), ...later("undecided")] : later("all")));
  return passes;
}

/** A pass over the plan's batches with the rows it runs: each batch's members, padded length and tokens. */
export interface PassLayout {
  members: number[][];
  lengths: number[];
  batchTokens: number[];
  tokens: number;
  rows: number;
}

/**
 * The layout of a pass: the plan's batches, keeping the members `active` marks (all when null) that have a
 * sequence for the pass (a response alone, for IFD's pass); `inputLength(m)` is that sequence's model input
 * length. A batch keeps its place (possibly empty), so progress and resume count batches alike.
 */
export function layoutOf(plan: ScorePlan, active: Uint8Array | null, inputLength: (m: number) => number | null): PassLayout {
  const members = plan.batches.map((b) => b.members.filter((m) => (!active || active[m]) && inputLength(m) !== null));
  const lengths = members.map((ms) => Math.max(0, ...ms.map((m) => inputLength(m)!)));
  const batchTokens = members.map((ms) => ms.reduce((a, m) => a + inputLength(m)!, 0));
  return {
    members,
    lengths,
    batchTokens,
    tokens: batchTokens.reduce((a, b) => a + b, 0),
    rows: members.reduce((a, ms) => a + ms.length, 0),
  };
}

/** The members of one block, longest first, ties by index; each batch fills rows x length <= budget. */
function packBatches(members: number[], lengths: number[], budget: number): Batch[] {
  const order = [...members].sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const batches: Batch[] = [];
  let current: Batch | undefined;
  for (const i of order) {
    if (current && (current.members.length + 1) * current.length <= budget) current.members.push(i);
    else batches.push((current = { members: [i], length: lengths[i]! }));
  }
  return batches;
}

/** The encoded rows (in row order) cut where their block changes. */
function blocksOf(rows: number[], blockRows: number): number[][] {
  const blocks: number[][] = [];
  rows.forEach((row, m) => {
    if (m === 0 || Math.floor(row / blockRows) !== Math.floor(rows[m - 1]! / blockRows)) blocks.push([]);
    blocks.at(-1)!.push(m);
  });
  return blocks;
}

/**
 * `lengths`: the model input length of each encoded row, `rows`: its row in the data (ascending). Each block
 * is packed alone; then the batches run longest first (an out-of-memory shows at once), ties in block order.
 */
export function planScoring(lengths: number[], rows: number[], blockRows: number, budget: number): ScorePlan {
  const batches = blocksOf(rows, blockRows)
    .flatMap((block) => packBatches(block, lengths, budget))
    .sort((a, b) => b.length - a.length);
  const batchTokens = batches.map((b) => b.members.reduce((a, m) => a + lengths[m]!, 0));
  const passTokens = batchTokens.reduce((a, b) => a + b, 0);
  const slots = batches.reduce((a, b) => a + b.members.length * b.length, 0);
  return {
    batches,
    batchTokens,
    passTokens,
    passRows: batches.reduce((a, b) => a + b.members.length, 0),
    padding: slots ? (slots - passTokens) / slots : 0,
  };
}

/** Whether `shard` scores `row`: it owns the blocks of score.block_rows rows k with k mod N = I. */
export function ownsRow(shard: Shard | null, blockRows: number, row: number): boolean {
  return !shard || Math.floor(row / blockRows) % shard.count === shard.index;
}

/** "level 2/3", "level 2/3 (calibration rows)", or "the responses alone (IFD)", counting levels from 1. */
export function passLabel(pass: Pick<Pass, "level" | "alone" | "rows">, levels: number): string {
  if (pass.alone) return "the responses alone (IFD)";
  const which = { all: "", calibration: " (calibration rows)", undecided: " (rows near a boundary)" }[pass.rows];
  return `level ${pass.level + 1}/${levels}${which}`;
}

export function describePass(passes: Pass[], p: number): string {
  return passLabel(passes[p]!, Math.max(...passes.map((x) => x.level)) + 1);
}
