// Acceptance: every per-level loss of the scorer equals an independent reference — the plain float64 forward
// pass (test/reference) of stories260K with weights masked by the sort-based reference — within 1e-4.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, expect, it } from "vitest";
import { scoreOnly } from "../../src/run/score.js";
import { readScoresFile } from "../../src/contract/file.js";
import { readLlama2cCheckpoint, type Llama2cModel } from "../reference/llama2c-checkpoint.js";
import { encodeLlama2c, loadLlama2cTokenizer, type Llama2cTokenizer } from "../reference/llama2c-encoder.js";
import { forwardLlama2c } from "../reference/llama-forward.js";
import { referenceMaskedLevels } from "../reference/masking.js";
import { testConfig, quiet } from "../helpers/config.js";
import { DATASETS_DIR, STORIES_BIN, STORIES_TOK, describeWithShared } from "../helpers/shared.js";
import { tempDir } from "../helpers/tmp.js";
import { storiesModel } from "../helpers/fixtures.js";

const TOL = 1e-4;
const MAX_TOKENS = 256;
const tmp = tempDir();

// stanford_alpaca's PROMPT_DICT, written out here independently of src/.
const alpacaPrompt = (instruction: string, input: string) =>
  input
    ? `Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n${instruction}\n\n### Input:\n${input}\n\n### Response:`
    : `Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n${instruction}\n\n### Response:`;

/** Reference token ids and response start: joint tokenization when the prompt's ids are its prefix, else separate. */
function referenceTokens(tok: Llama2cTokenizer, prompt: string, response: string): { ids: number[]; start: number } {
  const full = encodeLlama2c(tok, prompt + response, true, false);
  const head = encodeLlama2c(tok, prompt, true, false);
  if (head.every((v, i) => full[i] === v)) return { ids: full, start: head.length };
  return { ids: [...head, ...encodeLlama2c(tok, response, false, false)], start: head.length };
}

/** The checkpoint with every block matrix masked as the reference masks them at `level`. */
function maskedModel(model: Llama2cModel, scope: "layer" | "global", level: number): Llama2cModel {
  const c = model.config;
  const kv = (c.dim * c.nKvHeads) / c.nHeads;
  const sizes: [keyof Llama2cModel["weights"], number][] = [
    ["wq", c.dim * c.dim],
    ["wk", kv * c.dim],
    ["wv", kv * c.dim],
    ["wo", c.dim * c.dim],
    ["w1", c.hiddenDim * c.dim],
    ["w2", c.dim * c.hiddenDim],
    ["w3", c.hiddenDim * c.dim],
  ];
  const parts: { name: keyof Llama2cModel["weights"]; layer: number; data: Float32Array }[] = [];
  for (let l = 0; l < c.nLayers; l++)
    for (const [name, n] of sizes) parts.push({ name, layer: l, data: model.weights[name].slice(l * n, (l + 1) * n) });
  const masked = referenceMaskedLevels(
    parts.map((p) => p.data),
    scope,
    0.2,
    3,
  )[level]!;
  const weights = { ...model.weights };
  for (const [name] of sizes) weights[name] = weights[name].slice();
  parts.forEach((p, i) => weights[p.name].set(masked[i]!, p.layer * masked[i]!.length));
  return { config: c, weights };
}

function referenceLoss(model: Llama2cModel, ids: number[], start: number): number {
  const logits = forwardLlama2c(model, ids.slice(0, -1));
  let sum = 0;
  for (let p = start; p < ids.length; p++) {
    const row = logits[p - 1]!;
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
    sum += lse - row[ids[p]!]!;
  }
  return sum / (ids.length - start);
}

describeWithShared("per-level losses on stories260K equal the reference", () => {
  let modelDir: string;
  let ckpt: Llama2cModel;
  let tok: Llama2cTokenizer;
  beforeAll(async () => {
    modelDir = await storiesModel();
    ckpt = readLlama2cCheckpoint(readFileSync(STORIES_BIN));
    tok = loadLlama2cTokenizer(readFileSync(STORIES_TOK), 512);
  });

  async function check(data: string, template: "alpaca" | "none", rows: { prompt: string; response: string }[], scope: "layer" | "global") {
    const out = join(tmp, `${scope}-${template}.arrow`);
    await scoreOnly(
      testConfig({
        "data.path": data,
        "model.path": modelDir,
        template,
        "score.out": out,
        "score.scope": scope,
        "score.max_tokens": MAX_TOKENS,
        "score.batch_tokens": 700,
      }),
      quiet,
    );
    const { cols, meta } = await readScoresFile(out);
    expect(meta.masking.levels).toBe(3);
    const models = [0, 1, 2].map((k) => maskedModel(ckpt, scope, k));
    let compared = 0;
    rows.forEach((r, i) => {
      const { ids: all, start } = referenceTokens(tok, r.prompt, r.response);
      const ids = all.slice(0, MAX_TOKENS);
      if (start >= ids.length) {
        expect(cols.status[i]).toBe("prompt-too-long");
        return;
      }
      expect(cols.status[i]).toBe(all.length > MAX_TOKENS ? "truncated" : "ok");
      expect(cols.tokens[i]).toBe(ids.length - start);
      const losses = models.map((m) => referenceLoss(m, ids, start));
      losses.forEach((l, k) => expect(Math.abs(cols.losses[i * 3 + k]! - l), `row ${i} level ${k}`).toBeLessThan(TOL));
      expect(Math.abs(cols.dlc[i]! - (losses[0]! + losses[1]! + losses[2]!) / 3)).toBeLessThan(TOL);
      expect(losses[2]).not.toBeCloseTo(losses[0]!, 3); // masking changed the loss: the levels are distinct
      compared++;
    });
    expect(compared).toBeGreaterThanOrEqual(rows.length - 2);
    return cols.status;
  }

  const alpacaRows = () => {
    const all = JSON.parse(readFileSync(join(DATASETS_DIR, "alpaca-cleaned-1k/alpaca_data_cleaned_1000.json"), "utf8")) as {
      instruction: string;
      input: string;
      output: string;
    }[];
    // With and without input, a long response (truncated), short ones.
    return [all[6]!, all[8]!, all[0]!, all[2]!, ...all.filter((r) => r.output.length < 60).slice(0, 3)];
  };

  for (const scope of ["layer", "global"] as const)
    it(`alpaca rows, template alpaca, ${scope} scope`, async () => {
      const rows = alpacaRows();
      const data = join(tmp, `alpaca-${scope}.jsonl`);
      writeFileSync(data, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
      const status = await check(
        data,
        "alpaca",
        rows.map((r) => ({ prompt: alpacaPrompt(r.instruction, r.input), response: r.output })),
        scope,
      );
      expect(status).toContain("truncated"); // a long response lost its tail and was still scored
      expect(status).toContain("ok");
    });

  it("gsm8k rows (question/answer), template none, layer scope", async () => {
    const lines = readFileSync(join(DATASETS_DIR, "gsm8k/test.jsonl"), "utf8").split("\n").slice(0, 5);
    const rows = lines.map((l) => JSON.parse(l) as { question: string; answer: string });
    const data = join(tmp, "gsm8k.jsonl");
    writeFileSync(data, lines.join("\n") + "\n");
    await check(
      data,
      "none",
      rows.map((r) => ({ prompt: r.question, response: r.answer })),
      "layer",
    );
  });

  it("ifd = loss0 / loss of the response alone (BOS + response, no prompt), and loss0 = the unmasked level's loss", async () => {
    const rows = alpacaRows();
    const data = join(tmp, "alpaca-ifd.jsonl");
    writeFileSync(data, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
    const out = join(tmp, "ifd.arrow");
    await scoreOnly(
      testConfig({
        "data.path": data,
        "model.path": modelDir,
        template: "alpaca",
        "score.out": out,
        "score.max_tokens": MAX_TOKENS,
        "score.batch_tokens": 700,
        "score.ifd": true,
      }),
      quiet,
    );
    const { cols } = await readScoresFile(out);
    const unmasked = maskedModel(ckpt, "layer", 0);
    rows.forEach((r, i) => {
      const { ids: all, start } = referenceTokens(tok, alpacaPrompt(r.instruction, r.input), r.output);
      const loss0 = referenceLoss(unmasked, all.slice(0, MAX_TOKENS), start);
      // Cherry LLM's loss of the response alone: the response tokenized as its own document (BOS first), every token after BOS scored.
      const alone = referenceLoss(unmasked, encodeLlama2c(tok, r.output, true, false).slice(0, MAX_TOKENS), 1);
      expect(Math.abs(cols.loss0[i]! - loss0), `row ${i} loss0`).toBeLessThan(TOL);
      expect(Math.fround(cols.loss0[i]!)).toBe(cols.losses[i * 3]!); // the losses column holds the same value in float32
      expect(Math.abs(cols.ifd![i]! - loss0 / alone), `row ${i} ifd`).toBeLessThan(TOL);
    });
    expect(new Set(Array.from(cols.ifd!, (v) => v.toFixed(3))).size).toBe(rows.length); // distinct rows, distinct values
  });
});
