// Shared test fixtures: model folders built once per test process (tests only read them; a test that changes
// a model copies it first), JSONL rows and files, seeded numbers.
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { importLlama2c } from "../../src/kit/llama2c.js";
import { TINY_DEFAULTS, writeTinyModel, type TinyOptions } from "../../src/kit/tiny.js";
import { STORIES_BIN, STORIES_TOK } from "./shared.js";
import { tempDir } from "./tmp.js";

const models = new Map<string, Promise<string>>();
const modelsDir = tempDir("dlc-prune-models-");

/** Builds the folder `name` once per process. */
function once(name: string, build: (dir: string) => Promise<unknown>): Promise<string> {
  if (!models.has(name)) {
    const dir = join(modelsDir, `m${models.size}`);
    models.set(
      name,
      build(dir).then(() => dir),
    );
  }
  return models.get(name)!;
}

/** A tiny random model folder for these options. */
export function tinyModel(options: Partial<TinyOptions> = {}): Promise<string> {
  return once(`tiny ${JSON.stringify(options)}`, (dir) => writeTinyModel(dir, { ...TINY_DEFAULTS, ...options }));
}

/** The real stories260K (../shared), imported from llama2.c (callers check hasShared). */
export function storiesModel(): Promise<string> {
  return once("stories260K", (dir) => importLlama2c({ checkpoint: STORIES_BIN, tokenizer: STORIES_TOK, out: dir }));
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

export { lcg } from "./rng.js";

/** A manifest without its timings: the one part of the outputs that differs between identical runs. */
export function manifestWithoutTimings(path: string): unknown {
  const { timings: _timings, ...rest } = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  return rest;
}

/** Names, sizes and modification times of a folder's files: what a run or a refused command must leave as it was. */
export const snapshot = (dir: string): string[] =>
  readdirSync(dir).map((f) => `${f} ${statSync(join(dir, f)).size} ${statSync(join(dir, f)).mtimeMs}`);
