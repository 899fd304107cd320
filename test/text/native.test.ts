// The `tokenizers` package (Rust) against transformers.js, the reference: the same ids and response spans on
// every row, one encoding per row where the pipeline allows it, and transformers.js whenever they could differ.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { DataSource } from "../../src/data/source.js";
import { encodeDataset, type EncodedDataset } from "../../src/text/encode.js";
import { splitsAtTokenBoundaries, type NativeTokenizer } from "../../src/text/native.js";
import { loadTokenizer, type TextTokenizer } from "../../src/text/tokenizer.js";
import { ownsRow } from "../../src/score/plan.js";
import { testConfig } from "../helpers/config.js";
import { storiesModel, tinyModel } from "../helpers/fixtures.js";
import { DATASETS_DIR, describeWithShared } from "../helpers/shared.js";
import { tempDir } from "../helpers/tmp.js";

const tmp = tempDir();

/** encodeDataset with every option a run can set, and the lines it logs. */
async function encodeWith(tok: TextTokenizer, model: string, path: string, maxTokens = 512, keys: Record<string, unknown> = {}) {
  const config = testConfig({ "data.path": path, "model.path": model, "data.on_error": "skip", ...keys });
  const logged: string[] = [];
  const data = await encodeDataset(new DataSource(config.data), config.template, tok, maxTokens, {
    ifd: true,
    log: (l) => logged.push(l),
  });
  return { data, logged };
}

/** transformers.js alone: the reference. */
const reference = (tok: TextTokenizer): TextTokenizer => ({ ...tok, native: undefined });

/** Counts the native tokenizer's encodings, to tell one encoding per row from one per prefix. */
function counting(tok: TextTokenizer): { tok: TextTokenizer; calls: () => number } {
  let n = 0;
  const native: NativeTokenizer = { ...tok.native!, encode: (t, s) => (n++, tok.native!.encode(t, s)) };
  return { tok: { ...tok, native }, calls: () => n };
}

function expectSame(got: EncodedDataset, want: EncodedDataset) {
  expect(got.encoded.length).toBe(want.encoded.length);
  for (const [i, e] of got.encoded.entries()) {
    const w = want.encoded[i]!;
    expect([e.row, e.status, e.tokens, e.spans, Array.from(e.ids)]).toEqual([w.row, w.status, w.tokens, w.spans, Array.from(w.ids)]);
    expect(e.alone && [e.alone.spans, Array.from(e.alone.ids)]).toEqual(w.alone && [w.alone.spans, Array.from(w.alone.ids)]);
  }
  expect(got.unscored).toEqual(want.unscored);
}

describe("the native tokenizer", () => {
  let model: string;
  let tok: TextTokenizer;
  /** 300 rows "p<i>" -> "r<i>". */
  const rowsOf300 = (name: string) => {
    const path = join(tmp, name);
    writeFileSync(path, Array.from({ length: 300 }, (_, i) => JSON.stringify({ prompt: `p${i}`, response: `r${i}` })).join("\n"));
    return path;
  };
  /** The native tokenizer, with wrong ids for the texts `pattern` matches. */
  const wrongOn = (pattern: RegExp): NativeTokenizer => ({
    ...tok.native!,
    encode: async (t, s) => {
      const e = await tok.native!.encode(t, s);
      return pattern.test(t) ? { ...e, ids: e.ids.map((id) => (id + 1) % 700) } : e;
    },
  });
  beforeAll(async () => {
    model = await tinyModel({ vocab: 700 });
    tok = await loadTokenizer(model);
  });

  it("loads from the installed package, reading parts off one encoding for SentencePiece-style BPE", () => {
    expect(tok.native?.oneEncoding).toBe(true);
  });

  it("encodes each row once, with the reference's ids and spans, also across a merge at a part's end", async () => {
    const rows = [
      { prompt: "Write a sho", response: "rt story" }, // "sho" + "rt" merge into one piece: a token straddles the parts' end
      { prompt: "Name a color", response: " Blue, and green 😀 é" },
      { prompt: "x", response: "y" },
    ];
    const path = join(tmp, "rows.jsonl");
    writeFileSync(path, rows.map((r) => JSON.stringify(r)).join("\n"));
    const { tok: counted, calls } = counting(tok);
    const { data, logged } = await encodeWith(counted, model, path);
    expectSame(data, (await encodeWith(reference(tok), model, path)).data);
    expect(logged).toEqual([]);
    // Row 0: the whole text, its prefixes ("Write a sho", the whole), then its parts; the others one encoding.
    // Each row then has its response alone encoded once.
    expect(calls()).toBe(5 + 1 + 1 + 1 + 1 + 1);
  });

  it("a checked row that differs from transformers.js makes every row transformers.js's, saying so", async () => {
    const path = rowsOf300("many.jsonl");
    // Wrong ids from row 256 on (the first row checked after the first 32): found there.
    const native = wrongOn(/^p(25[6-9]|2[6-9]\d)/);
    const { data, logged } = await encodeWith({ ...tok, native }, model, path);
    expect(logged).toEqual([
      "the tokenizers package's tokens differ from transformers.js's on row 256: tokenizing every row with transformers.js instead",
    ]);
    expectSame(data, (await encodeWith(reference(tok), model, path)).data);
  });

  it("a shard checks the rows checked in a run over all rows, its own or not, and falls back alike", async () => {
    const path = rowsOf300("shard.jsonl");
    // Wrong ids on rows 250-299: row 256 (shard 0's, blocks of 128) is the first checked; rows 250-255 are
    // shard 1's and not checked, so shard 1 finds the difference on shard 0's row only.
    const native = wrongOn(/^p(25\d|2[6-9]\d)/);
    const config = testConfig({ "data.path": path, "model.path": model });
    const owns = (row: number) => ownsRow({ index: 1, count: 2 }, 128, row);
    const logged: string[] = [];
    const opts = { ifd: true, owns, log: (l: string) => logged.push(l) };
    const got = await encodeDataset(new DataSource(config.data), config.template, { ...tok, native }, 512, opts);
    expect(logged).toEqual([
      "the tokenizers package's tokens differ from transformers.js's on row 256: tokenizing every row with transformers.js instead",
    ]);
    const want = await encodeDataset(new DataSource(config.data), config.template, reference(tok), 512, { ifd: true, owns });
    expectSame(got, want);
    expect(got.encoded.map((e) => e.row)).toEqual(Array.from({ length: 128 }, (_, i) => 128 + i));
  });

  it("reads parts off one encoding only for pipelines where a prefix's tokens cannot depend on what follows", () => {
    const json = JSON.parse(readFileSync(join(model, "tokenizer.json"), "utf8")) as Record<string, unknown>;
    expect(splitsAtTokenBoundaries(json)).toBe(true);
    const gpt2 = { ...json, normalizer: null, pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, use_regex: true } };
    const eos = {
      ...json,
      post_processor: {
        type: "TemplateProcessing",
        single: [{ Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "</s>", type_id: 0 } }],
      },
    };
    const nfkc = { ...json, normalizer: { type: "NFKC" } };
    const lstrip = {
      ...json,
      added_tokens: [{ id: 0, content: "<x>", lstrip: true, rstrip: false, normalized: false, single_word: false }],
    };
    const dropout = { ...json, model: { ...(json.model as object), dropout: 0.1 } };
    for (const other of [gpt2, eos, nfkc, lstrip, dropout]) expect(splitsAtTokenBoundaries(other)).toBe(false);
  });

  it("reports the first row before tokenizing it", async () => {
    const path = join(tmp, "one.jsonl");
    writeFileSync(path, JSON.stringify({ prompt: "a", response: "b" }) + "\n");
    const events: string[] = [];
    const native: NativeTokenizer = { ...tok.native!, encode: (t, s) => (events.push("encode"), tok.native!.encode(t, s)) };
    const config = testConfig({ "data.path": path, "model.path": model });
    await encodeDataset(new DataSource(config.data), config.template, { ...tok, native }, 512, { onRow: (r) => events.push(`row ${r}`) });
    expect(events[0]).toBe("row 0");
  });
});

// Every row of every data set in ../shared that dlc-prune reads (fastchat's bench questions and self-instruct's
// tasks have no response field it knows), with each tokenizer at hand.
const DATASETS = [
  "alpaca-cleaned-1k/alpaca_data_cleaned_1000.json",
  "codealpaca/code_alpaca_2k.json",
  "dolly-subset/dolly.jsonl",
  "fastchat/dummy_conversation.json",
  "gsm8k/test.jsonl",
  "gsm8k/train.jsonl",
];

describeWithShared("the native tokenizer on the shared data sets", () => {
  // stories260K has no chat template (no conversations); gsm8k's 7,473 training rows with the real tokenizer only.
  const models: [string, () => Promise<string>, (file: string) => boolean][] = [
    ["tiny (vocab 512, chat template)", () => tinyModel(), (file) => !file.includes("train")],
    ["stories260K", () => storiesModel(), (file) => !file.includes("conversation")],
  ];
  for (const [name, modelOf, reads] of models)
    for (const file of DATASETS.filter(reads))
      it(`${name}: ${file}`, { timeout: 300_000 }, async () => {
        const model = await modelOf();
        const tok = await loadTokenizer(model);
        expect(tok.native?.oneEncoding).toBe(true);
        const path = join(DATASETS_DIR, file);
        const { data, logged } = await encodeWith(tok, model, path, 100_000);
        expect(logged).toEqual([]);
        expectSame(data, (await encodeWith(reference(tok), model, path, 100_000)).data);
        expect(data.encoded.length).toBeGreaterThan(0);
      });
});
