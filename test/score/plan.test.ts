// The batch plan: length-packed batches within blocks of rows, so that a shard, which encodes only the rows
// of its blocks, plans exactly the batches a single process runs for them (their floats are then the same).
import { describe, expect, it } from "vitest";
import { ownsRow, planScoring } from "../../src/score/plan.js";
import { planOf } from "../../src/score/setup.js";
import type { EncodedDataset } from "../../src/text/encode.js";
import { testConfig } from "../helpers/config.js";
import { lcg } from "../helpers/rng.js";

/** 1,000 rows, about one in seven unscored (no entry), input lengths 3..300. */
function rowsAndLengths(): { rows: number[]; lengths: number[] } {
  const rand = lcg(7);
  const rows: number[] = [];
  const lengths: number[] = [];
  for (let row = 0; row < 1000; row++) {
    if (rand() < 1 / 7) continue;
    rows.push(row);
    lengths.push(3 + Math.floor(rand() * 298));
  }
  return { rows, lengths };
}

const BUDGET = 1024;
const BLOCK = 64;

/** Each batch as its data rows, and its padded length. */
const batchesByRow = (plan: ReturnType<typeof planScoring>, rows: number[]) =>
  plan.batches.map((b) => ({ rows: b.members.map((m) => rows[m]!), length: b.length }));

describe("the score plan", () => {
  const { rows, lengths } = rowsAndLengths();
  const whole = planScoring(lengths, rows, BLOCK, BUDGET);

  it("packs each block's rows longest first under the token budget, every row in one batch", () => {
    const members = whole.batches.flatMap((b) => b.members).sort((a, b) => a - b);
    expect(members).toEqual(rows.map((_, m) => m));
    for (const b of whole.batches) {
      expect(new Set(b.members.map((m) => Math.floor(rows[m]! / BLOCK))).size).toBe(1); // one block
      expect(b.length).toBe(Math.max(...b.members.map((m) => lengths[m]!)));
      expect(b.members.length * b.length).toBeLessThanOrEqual(Math.max(BUDGET, b.length));
    }
    const padded = whole.batches.map((b) => b.length);
    expect(padded).toEqual([...padded].sort((a, b) => b - a)); // the longest batch first
    const tokens = lengths.reduce((a, b) => a + b, 0);
    const slots = whole.batches.reduce((a, b) => a + b.members.length * b.length, 0);
    expect([whole.passTokens, whole.passRows, whole.padding]).toEqual([tokens, rows.length, (slots - tokens) / slots]);
  });

  it("gives a shard, from its own rows, the batches of a single process's plan for them", () => {
    const covered: { rows: number[]; length: number }[] = [];
    for (const index of [0, 1, 2]) {
      const shard = { index, count: 3 };
      const mine = rows.map((_, m) => m).filter((m) => ownsRow(shard, BLOCK, rows[m]!));
      const own = planScoring(
        mine.map((m) => lengths[m]!),
        mine.map((m) => rows[m]!),
        BLOCK,
        BUDGET,
      );
      const got = batchesByRow(
        own,
        mine.map((m) => rows[m]!),
      );
      const want = batchesByRow(whole, rows).filter((b) => ownsRow(shard, BLOCK, b.rows[0]!));
      expect(got).toEqual(want);
      expect(got.length).toBeGreaterThan(whole.batches.length / 4); // shards share the work
      covered.push(...got);
    }
    expect(covered.length).toBe(whole.batches.length);
  });

  it("plans a sample of the rows (estimate --sample) in blocks of rows read, as a run's blocks hold that many", () => {
    // Every 10th row of 1,000 read, one unscored: by row, 64-row blocks would hold 6 or 7 of them each.
    const sampled = rows.filter((r) => r % 10 === 0);
    const encoded = sampled.slice(1).map((row) => ({ row, ids: new Int32Array(1 + lengths[rows.indexOf(row)]!) }));
    const data = { encoded, unscored: [{ row: sampled[0]!, status: "empty-response" }] } as unknown as EncodedDataset;
    const s = testConfig({ "data.path": "x", "score.block_rows": BLOCK, "score.batch_tokens": BUDGET }).score;
    const positions = encoded.map((_, i) => i + 1); // the unscored row was read first
    const want = planScoring(
      encoded.map((e) => e.ids.length - 1),
      positions,
      BLOCK,
      BUDGET,
    );
    expect(planOf(data, s, true)).toEqual(want);
    expect(planOf(data, s).batches.length).toBeGreaterThan(want.batches.length);
  });

  it("deals blocks of rows to the shards in turn", () => {
    const shard = { index: 1, count: 3 };
    expect([0, 63, 64, 127, 128, 255, 256, 320].map((row) => ownsRow(shard, 64, row))).toEqual([
      false,
      false,
      true,
      true,
      false,
      false,
      true,
      false,
    ]);
    expect(ownsRow(null, 64, 5)).toBe(true);
  });
});
