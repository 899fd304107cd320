// Shared test fixtures: one tiny model per test process, JSONL rows and files, seeded numbers.
import { writeFileSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TINY_DEFAULTS, writeTinyModel, type TinyOptions } from "../../src/kit/tiny.js";

const models = new Map<string, Promise<string>>();

/** A tiny model folder built once per process for these options (tests only read it). */
export function tinyModel(options: Partial<TinyOptions> = {}): Promise<string> {
  const key = JSON.stringify(options);
  if (!models.has(key)) {
    const dir = join(mkdtempSync(join(tmpdir(), "dlc-prune-model-")), "tiny");
    models.set(key, writeTinyModel(dir, { ...TINY_DEFAULTS, ...options }).then(() => dir));
  }
  return models.get(key)!;
}

/** Rows as JSON Lines, each line ended by `eol`. */
export function writeJsonl(path: string, rows: unknown[], eol = "\n"): string {
  writeFileSync(path, rows.map((r) => JSON.stringify(r) + eol).join(""));
  return path;
}

/** Short Alpaca rows with an id, a source and a number, all distinct. */
export function alpacaRows(n: number): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `r${i}`,
    instruction: `Write ${i % 5} short sentences about ${["water", "the city", "a plan", "the sea"][i % 4]}.`,
    input: i % 3 === 0 ? "Be brief." : "",
    output: `Here are the sentences, number ${i}. The people like it.`,
    source: ["alpaca", "dolly", "gsm8k"][i % 3],
    n: i * 1000,
  }));
}

/** A seeded uniform [0, 1) generator (a 32-bit LCG): test data that is the same on every run. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
}
