// Formats, templates, the response mask and every way a row can end up unscored.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parquetWriteFile } from "hyparquet-writer";
import { beforeAll, describe, expect, it } from "vitest";
import type { Config } from "../../src/config/schema.js";
import { DataSource } from "../../src/data/source.js";
import { TINY_DEFAULTS, writeTinyModel } from "../../src/kit/tiny.js";
import { encodeDataset, tokenizeParts } from "../../src/text/encode.js";
import { ownsRow } from "../../src/score/plan.js";
import { ALPACA_PROMPT_INPUT, ALPACA_PROMPT_NO_INPUT, renderParts } from "../../src/text/templates.js";
import { loadTokenizer, type TextTokenizer } from "../../src/text/tokenizer.js";
import { testConfig } from "../helpers/config.js";
import { tempDir } from "../helpers/tmp.js";
import { tinyModel } from "../helpers/fixtures.js";

const tmp = tempDir();
let model: string;
let tok: TextTokenizer;

beforeAll(async () => {
  model = await tinyModel({ vocab: 700 });
  tok = await loadTokenizer(model);
});

function jsonl(name: string, rows: unknown[]): string {
  const path = join(tmp, name);
  writeFileSync(path, rows.map((r) => (typeof r === "string" ? r : JSON.stringify(r))).join("\n") + "\n");
  return path;
}

/** encodeDataset as the score stage calls it, for a config of dotted keys. */
function encodeConfig(config: Config, tokenizer: TextTokenizer, maxTokens = 512) {
  return encodeDataset(new DataSource(config.data), config.template, tokenizer, maxTokens);
}

const encode = (path: string, keys: Record<string, unknown> = {}, maxTokens = 512) =>
  encodeConfig(testConfig({ "data.path": path, "model.path": model, ...keys }), tok, maxTokens);

const tokensOf = (ids: Int32Array, spans: [number, number][]) => spans.flatMap(([s, e]) => Array.from(ids.subarray(s, e)));

describe("formats", () => {
  it("auto-detects alpaca, prompt/response variants, sharegpt and messages", async () => {
    const cases: [unknown, string, string][] = [
      [{ instruction: "Say hi", input: "", output: "hi" }, "alpaca", "alpaca"],
      [{ prompt: "Say hi", response: "hi" }, "prompt_response", "none"],
      [{ question: "1+1?", answer: "2" }, "prompt_response", "none"],
      [{ prompt: "Say hi", answer: "hi" }, "prompt_response", "none"],
      [
        {
          conversations: [
            { from: "human", value: "hi" },
            { from: "gpt", value: "hello" },
          ],
        },
        "sharegpt",
        "chat",
      ],
      [
        {
          messages: [
            { role: "user", content: "hi" },
            { role: "assistant", content: "hello" },
          ],
        },
        "messages",
        "chat",
      ],
    ];
    for (const [i, [row, format, template]] of cases.entries()) {
      const d = await encode(jsonl(`detect-${i}.jsonl`, [row]));
      expect([d.format.format, d.template]).toEqual([format, template]);
      expect(d.encoded).toHaveLength(1);
    }
  });

  it("says when it cannot tell the format, naming the file and the fields", async () => {
    const path = jsonl("unknown.jsonl", [{ text: "x", label: 1 }]);
    await expect(encode(path)).rejects.toThrow(`${path}: cannot tell the data format from the first row's fields [text, label]`);
  });

  it("reads JSON arrays and Parquet written by another writer", async () => {
    const rows = [
      { instruction: "Name a color", input: "", output: "Blue" },
      { instruction: "Add", input: "2 and 3", output: "5" },
    ];
    const json = join(tmp, "rows.json");
    writeFileSync(json, JSON.stringify(rows));
    const parquet = join(tmp, "rows.parquet");
    parquetWriteFile({
      filename: parquet,
      columnData: ["instruction", "input", "output"].map((name) => ({
        name,
        data: rows.map((r) => r[name as keyof typeof r]),
        type: "STRING" as const,
      })),
    });
    const a = await encode(json);
    const b = await encode(parquet);
    const c = await encode(jsonl("rows.jsonl", rows));
    for (const d of [a, b]) expect(d.encoded.map((e) => Array.from(e.ids))).toEqual(c.encoded.map((e) => Array.from(e.ids)));
  });
});

describe("templates", () => {
  it("renders stanford_alpaca's prompts, the response directly after", () => {
    const withInput = renderParts({ kind: "alpaca", instruction: "Sum", input: "1 $& 2", output: "3" }, "alpaca") as { text: string }[];
    expect(withInput.map((p) => p.text)).toEqual([
      ALPACA_PROMPT_INPUT.replace("{instruction}", "Sum").replace("{input}", () => "1 $& 2"),
      "3",
    ]);
    expect(withInput[0]!.text.endsWith("### Input:\n1 $& 2\n\n### Response:")).toBe(true);
    const noInput = renderParts({ kind: "alpaca", instruction: "Hi", input: "", output: "Hello" }, "alpaca") as { text: string }[];
    expect(noInput[0]!.text).toBe(ALPACA_PROMPT_NO_INPUT.replace("{instruction}", "Hi"));
    expect(noInput[0]!.text.startsWith("Below is an instruction that describes a task. Write a response")).toBe(true);
  });

  it("chat: only assistant turns (with their end-of-turn tokens) are response tokens", async () => {
    const conv = {
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Name a color" },
        { role: "assistant", content: "Blue" },
        { role: "user", content: "Another one" },
        { role: "assistant", content: "Green and red" },
      ],
    };
    const d = await encode(jsonl("chat.jsonl", [conv]));
    const e = d.encoded[0]!;
    expect(e.spans).toHaveLength(2);
    // Read the span tokens back through tokenizer.json's vocab. After a special token the next segment
    // gets SentencePiece's dummy "▁" again, as Llama's tokenizer does: "<|im_end|>" "▁" "\n".
    const vocab = JSON.parse(readFileSync(join(model, "tokenizer.json"), "utf8")).model.vocab as Record<string, number>;
    const piece = new Map(Object.entries(vocab).map(([p, id]) => [id, p]));
    const text = (ids: number[]) => {
      const bytes: number[] = [];
      for (const id of ids) {
        const p = piece.get(id)!;
        const byte = /^<0x([0-9A-F]{2})>$/.exec(p);
        if (byte) bytes.push(parseInt(byte[1]!, 16));
        else bytes.push(...Buffer.from(p.replaceAll("\u2581", " ")));
      }
      return Buffer.from(bytes).toString("utf8");
    };
    expect(e.spans.map(([s, t]) => text(Array.from(e.ids.subarray(s, t))))).toEqual(["Blue<|im_end|> \n", "Green and red<|im_end|> \n"]);
    expect(e.tokens).toBe(tokensOf(e.ids, e.spans).length);
    // The rest is the prompt: the whole sequence is the tokenized rendering.
    const full = tok.chat!(conv.messages, false);
    expect(Array.from(e.ids)).toEqual(tok.encode(full, false));
  });

  it("falls back to separate tokenization when the prompt's ids are not a prefix", async () => {
    // "sho" + "rt" merge into one piece when tokenized together.
    const parts = [
      { text: "Write a sho", scored: false },
      { text: "rt story", scored: true },
    ];
    const joint = tok.encode("Write a short story", true);
    const prompt = tok.encode("Write a sho", true);
    expect(prompt.every((v, i) => joint[i] === v)).toBe(false);
    const { ids, spans } = await tokenizeParts(parts, tok, true);
    expect(ids).toEqual([...prompt, ...tok.encode("rt story", false)]);
    expect(spans).toEqual([[prompt.length, ids.length]]);
  });
});

describe("unscored rows and bad input", () => {
  it("gives every row a status: ok, truncated, empty-response, prompt-too-long, no-assistant-turn", async () => {
    const long = "word ".repeat(80);
    const path = jsonl("statuses.jsonl", [
      { prompt: "Hello", response: "there" },
      { prompt: "Hello", response: long },
      { prompt: "Hello", response: "   " },
      { prompt: long, response: "x" },
    ]);
    const d = await encode(path, {}, 40);
    expect(d.rows).toBe(4);
    expect(d.encoded.map((e) => [e.row, e.status])).toEqual([
      [0, "ok"],
      [1, "truncated"],
    ]);
    expect(d.encoded[1]!.ids.length).toBe(40);
    expect(d.encoded[1]!.tokens).toBe(40 - tok.encode("Hello", true).length);
    expect(d.unscored).toEqual([
      { row: 2, status: "empty-response" },
      { row: 3, status: "prompt-too-long" },
    ]);
    const chat = await encode(jsonl("no-assistant.jsonl", [{ messages: [{ role: "user", content: "hi" }] }]));
    expect(chat.unscored).toEqual([{ row: 0, status: "no-assistant-turn" }]);
  });

  it("a malformed JSON line fails naming file:line, or is kept unscored with on_error skip", async () => {
    const path = jsonl("malformed.jsonl", [
      { prompt: "a", response: "b" },
      "",
      '{"prompt": "a", "response": ',
      { prompt: "c", response: "d" },
    ]);
    await expect(encode(path)).rejects.toThrow(`${path}:3: malformed JSON`);
    const d = await encode(path, { "data.on_error": "skip" });
    expect(d.rows).toBe(3); // the blank line is not a row
    expect(d.unscored).toEqual([{ row: 1, status: expect.stringMatching(/^bad-row: malformed JSON/) }]);
    expect(d.encoded.map((e) => e.row)).toEqual([0, 2]);
  });

  it("a missing or mistyped field names file:line and the field", async () => {
    const path = jsonl("missing.jsonl", [{ instruction: "a", output: "b" }, { instruction: "c" }]);
    await expect(encode(path)).rejects.toThrow(`${path}:2: missing field "output"`);
    const typed = jsonl("typed.jsonl", [
      { instruction: "a", output: "b" },
      { instruction: "c", output: 5 },
    ]);
    await expect(encode(typed)).rejects.toThrow(`${typed}:2: field "output" is number, expected text`);
    const turns = jsonl("turns.jsonl", [{ conversations: [{ from: "robot", value: "x" }] }]);
    await expect(encode(turns)).rejects.toThrow(`${turns}:1: conversations[0].from "robot" is not a known role`);
  });

  it("a chat template that refuses a row makes that row bad, not the run", async () => {
    const dir = join(tmp, "strict-chat");
    await writeTinyModel(dir, { ...TINY_DEFAULTS, vocab: 700 });
    const cfgPath = join(dir, "tokenizer_config.json");
    const cfg = JSON.parse(readFileSync(cfgPath, "utf8"));
    cfg.chat_template =
      "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversation roles must start with user') }}{% endif %}" +
      cfg.chat_template;
    writeFileSync(cfgPath, JSON.stringify(cfg));
    const strict = await loadTokenizer(dir);
    const path = jsonl("strict.jsonl", [
      {
        messages: [
          { role: "user", content: "hi" },
          { role: "assistant", content: "hello" },
        ],
      },
      {
        messages: [
          { role: "assistant", content: "hello" },
          { role: "user", content: "hi" },
          { role: "assistant", content: "bye" },
        ],
      },
    ]);
    const config = (onError: string) => testConfig({ "data.path": path, "model.path": dir, "data.on_error": onError });
    await expect(encodeConfig(config("fail"), strict)).rejects.toThrow(
      `${path}:2: the chat template failed: Conversation roles must start with user`,
    );
    const d = await encodeConfig(config("skip"), strict);
    expect(d.encoded.map((e) => e.row)).toEqual([0]);
    expect(d.unscored).toEqual([{ row: 1, status: "bad-row: the chat template failed: Conversation roles must start with user" }]);
  });

  it("a byte order mark is not data; a bad first row does not stop a skipping run", async () => {
    const bom = join(tmp, "bom.jsonl");
    writeFileSync(bom, "\uFEFF" + JSON.stringify({ prompt: "a", response: "b" }) + "\n");
    expect((await encode(bom)).encoded).toHaveLength(1);
    const badFirst = jsonl("bad-first.jsonl", ["{oops", { prompt: "a", response: "b" }]);
    await expect(encode(badFirst)).rejects.toThrow(`${badFirst}:1: malformed JSON`);
    const d = await encode(badFirst, { "data.on_error": "skip" });
    expect([d.format.format, d.encoded.map((e) => e.row), d.unscored.map((u) => u.row)]).toEqual(["prompt_response", [1], [0]]);
  });

  it("roles: empty or not a ShareGPT role (not even an Object property name)", async () => {
    const empty = jsonl("empty-role.jsonl", [{ messages: [{ role: "", content: "x" }] }]);
    await expect(encode(empty)).rejects.toThrow(`${empty}:1: messages[0].role is empty`);
    const proto = jsonl("proto-role.jsonl", [{ conversations: [{ from: "constructor", value: "x" }] }]);
    await expect(encode(proto)).rejects.toThrow(`${proto}:1: conversations[0].from "constructor" is not a known role`);
  });

  it("a template that cannot render the format is a config error", async () => {
    const path = jsonl("conv.jsonl", [
      {
        messages: [
          { role: "user", content: "hi" },
          { role: "assistant", content: "yo" },
        ],
      },
    ]);
    await expect(encode(path, { template: "alpaca" })).rejects.toThrow(
      "template alpaca cannot render messages conversations; use template chat",
    );
  });
});

describe("a shard's rows", () => {
  it("are the only ones tokenized, encoded as in a run over every row; every row is still read and rendered", async () => {
    // Row markers "m<i>" show which rows reach the tokenizer. Row 5 is not JSON, row 11 has no response,
    // rows 7 and 20 share a response, row 13 is cut at max_tokens.
    const lines: unknown[] = Array.from({ length: 30 }, (_, i) => ({
      id: `r${i}`,
      prompt: `m${i} says`,
      response: i === 11 ? "" : i === 20 ? "a shared answer" : i === 7 ? "A  shared answer" : `${i} `.repeat(i === 13 ? 200 : 3),
    }));
    lines[5] = "{not json";
    const path = jsonl("shard.jsonl", lines);
    const config = testConfig({ "data.path": path, "model.path": model, "data.on_error": "skip", "data.fields.id": "id" });
    const seen = new Set<number>();
    const transformersOnly: TextTokenizer = {
      ...tok,
      native: undefined,
      encode: (text, special) => {
        for (const m of text.matchAll(/m(\d+) says/g)) seen.add(Number(m[1]));
        return tok.encode(text, special);
      },
    };
    const all = await encodeDataset(new DataSource(config.data), config.template, transformersOnly, 64, { ifd: true });
    expect(seen.size).toBe(28); // every row but the bad one and the empty response's
    seen.clear();
    const owns = (row: number) => ownsRow({ index: 1, count: 3 }, 4, row); // blocks 1, 4, 7: rows 4-7, 16-19, 28-29
    const mine = await encodeDataset(new DataSource(config.data), config.template, transformersOnly, 64, { ifd: true, owns });
    expect([...seen].sort((a, b) => a - b)).toEqual([4, 6, 7, 16, 17, 18, 19, 28, 29]);
    expect(mine.encoded).toEqual(all.encoded.filter((e) => owns(e.row)));
    expect(mine.unscored).toEqual([{ row: 5, status: expect.stringMatching(/^bad-row: /) as string }]);
    expect(all.unscored.filter((u) => owns(u.row))).toEqual(mine.unscored);
    expect([all.unscored.map((u) => u.row), all.encoded.find((e) => e.row === 13)?.status]).toEqual([[5, 11], "truncated"]);
    // What describes every row stays whole: the count, the ids, the duplicate flags and the rendered hash.
    expect([mine.rows, mine.ids, mine.renderedSha256]).toEqual([all.rows, all.ids, all.renderedSha256]);
    expect(mine.duplicates).toEqual(all.duplicates);
    expect(all.duplicates.get(20)).toEqual({ of: 7, pairOf: null });
  });
});
