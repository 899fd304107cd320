// transformers.js, loading the imported tokenizer.json, must encode exactly as llama2.c's encoder
// (an independent plain port in test/reference) and decode back to the input.
import { readFileSync } from "node:fs";
import { basename, dirname } from "node:path";
import { AutoTokenizer, env, type PreTrainedTokenizer } from "@huggingface/transformers";
import { beforeAll, expect, it } from "vitest";
import { encodeLlama2c, loadLlama2cTokenizer } from "../reference/llama2c-encoder.js";
import { STORIES_TOK, describeWithShared } from "../helpers/shared.js";
import { storiesModel, tinyModel } from "../helpers/fixtures.js";

async function loadFromFolder(dir: string): Promise<PreTrainedTokenizer> {
  env.allowRemoteModels = false;
  env.localModelPath = dirname(dir);
  return AutoTokenizer.from_pretrained(basename(dir), { local_files_only: true });
}

/**
 * Seeded varied strings: words, digits, punctuation, runs of spaces/tabs/newlines, leading and trailing
 * whitespace, accented and non-Latin scripts, CJK, emoji (surrogate pairs, ZWJ sequences, flags) that
 * need byte fallback. Excluded: NUL (llama2.c reads C strings), "▁" (SentencePiece's space marker) and
 * the literal special-token texts <s>, </s>, <unk> (matched as special tokens by design).
 */
export function variedStrings(count: number, seed: number): string[] {
  let s = seed >>> 0;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!;
  const parts = [
    () => pick(["Once", "upon", "a", "time", "the", "little", "girl", "Lily", "ball", "played", "happy", "sun", "dog", "tree", "house"]),
    () => String(Math.floor(rnd() * 10 ** (1 + Math.floor(rnd() * 7)))),
    () =>
      pick([
        ".",
        ",",
        "!",
        "?",
        ";",
        ":",
        "'",
        '"',
        "(",
        ")",
        "-",
        "--",
        "...",
        "/",
        "\\",
        "#",
        "$",
        "%",
        "&",
        "*",
        "+",
        "=",
        "@",
        "[",
        "]",
        "{",
        "}",
        "|",
        "~",
        "^",
        "`",
        "<",
        ">",
      ]),
    () => " ".repeat(1 + Math.floor(rnd() * 4)),
    () => pick(["\t", "\n", "\n\n", "\r\n", " \t ", "\u00a0", "\u3000"]),
    () => pick(["café", "naïve", "Ångström", "façade", "über", "niño", "œuvre", "Straße", "ĳ", "ǅ"]),
    () => pick(["Привет", "мир", "Γειά σου", "שלום", "مرحبا", "नमस्ते", "こんにちは", "中文字符", "한국어", "ไทย", "Tiếng Việt"]),
    () => pick(["😀", "🎉", "👍🏽", "👩‍💻", "🇫🇷", "❤️", "🧠", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𐍈", "🀄"]),
    () => pick(["x", "Q", "zz", "ab", "The", "THE", "tHe", "e", "I", "a"]),
  ];
  const out: string[] = ["", " ", "  ", "a", "Once upon a time", " leading", "trailing ", "\n", "😀", "a  b   c"];
  while (out.length < count) {
    const n = 1 + Math.floor(rnd() * 12);
    let t = "";
    for (let i = 0; i < n; i++) t += pick(parts)();
    out.push(t);
  }
  return out;
}

describeWithShared("imported stories260K tokenizer in transformers.js", () => {
  let tokenizer: PreTrainedTokenizer;
  let reference: ReturnType<typeof loadLlama2cTokenizer>;
  beforeAll(async () => {
    const dir = await storiesModel();
    tokenizer = await loadFromFolder(dir);
    reference = loadLlama2cTokenizer(readFileSync(STORIES_TOK), 512);
  });

  it("encodes 1,200 varied strings to exactly llama2.c's ids and decodes them back", () => {
    const strings = variedStrings(1200, 20261128);
    expect(new Set(strings).size).toBeGreaterThan(1000);
    let byteFallback = 0;
    for (const text of strings) {
      const ids = tokenizer.encode(text);
      expect(ids, JSON.stringify(text)).toEqual(encodeLlama2c(reference, text, true, false));
      expect(tokenizer.decode(ids, { skip_special_tokens: true }), JSON.stringify(text)).toBe(text);
      if (ids.some((id) => id >= 3 && id < 259)) byteFallback++;
    }
    expect(byteFallback).toBeGreaterThan(100); // the emoji and scripts outside tok512's pieces went through <0xHH>
  });

  it("renders the Llama-2 chat template", () => {
    const text = tokenizer.apply_chat_template(
      [
        { role: "user", content: "Tell me a story." },
        { role: "assistant", content: "Once upon a time." },
      ],
      { tokenize: false },
    );
    expect(text).toBe("<s>[INST] Tell me a story. [/INST] Once upon a time.</s>");
  });
});

it("tiny model tokenizer: round trip, byte fallback, chat template with special tokens", async () => {
  const dir = await tinyModel({ vocab: 700 });
  const tokenizer = await loadFromFolder(dir);
  expect(tokenizer.get_vocab().size).toBe(700);
  for (const text of variedStrings(300, 5)) {
    const ids = tokenizer.encode(text);
    expect(ids[0]).toBe(1);
    expect(Math.max(...ids)).toBeLessThan(700);
    expect(tokenizer.decode(ids, { skip_special_tokens: true }), JSON.stringify(text)).toBe(text);
  }
  // Learned pieces make common words one or two tokens, unlike byte-level characters.
  expect(tokenizer.encode("Write a short story about the customer", { add_special_tokens: false }).length).toBeLessThan(12);
  const chat = tokenizer.apply_chat_template([{ role: "user", content: "Hi" }], { tokenize: false, add_generation_prompt: true });
  expect(chat).toBe("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  const ids = tokenizer.encode(chat as string, { add_special_tokens: false });
  expect(ids[0]).toBe(tokenizer.convert_tokens_to_ids("<|im_start|>"));
  expect(ids.filter((id) => id === 699).length).toBe(1); // <|im_end|>, matched whole
});
