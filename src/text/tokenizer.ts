// The model folder's tokenizer through transformers.js, offline (remote models off), and the `tokenizers`
// package's on the same tokenizer.json when it loads (faster; encode.ts checks it against transformers.js).
import { basename, dirname, resolve } from "node:path";
import { AutoTokenizer, env, type PreTrainedTokenizer } from "@huggingface/transformers";
import { UserError } from "../util/errors.js";
import { TemplateError, type ChatRenderer } from "./templates.js";
import type { Turn } from "../data/formats.js";
import { loadNativeTokenizer, type NativeTokenizer } from "./native.js";

/** The transformers.js that tokenizes (recorded with the scores). */
export const TRANSFORMERS_VERSION: string = env.version;

export interface TextTokenizer {
  /** transformers.js: the reference every encoding must equal. */
  encode(text: string, addSpecialTokens: boolean): number[];
  /** The `tokenizers` package on the same tokenizer.json; undefined when it is not installed or cannot read it. */
  native?: NativeTokenizer;
  /** Undefined when the tokenizer has no chat template. */
  chat?: ChatRenderer;
  padId: number;
  /** Largest token id + 1 (added tokens included). */
  vocabSize: number;
}

export async function loadTokenizer(modelDir: string): Promise<TextTokenizer> {
  const dir = resolve(modelDir);
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = dirname(dir);
  let tok: PreTrainedTokenizer;
  try {
    tok = await AutoTokenizer.from_pretrained(basename(dir), { local_files_only: true });
  } catch (err) {
    throw new UserError(`${dir}: cannot load the tokenizer (${(err as Error).message.split("\n")[0]})`);
  }
  const chat: ChatRenderer | undefined = tok.chat_template
    ? (messages: Turn[], addGenerationPrompt: boolean) => {
        try {
          return tok.apply_chat_template(messages as { role: string; content: string }[], {
            tokenize: false,
            add_generation_prompt: addGenerationPrompt,
          }) as string;
        } catch (err) {
          throw new TemplateError(`the chat template failed: ${(err as Error).message.split("\n")[0]}`);
        }
      }
    : undefined;
  const native = await loadNativeTokenizer(dir);
  return {
    encode: (text, addSpecialTokens) => tok.encode(text, { add_special_tokens: addSpecialTokens }),
    ...(native ? { native } : {}),
    chat,
    padId: tok.pad_token_id ?? tok.eos_token_id ?? 0,
    vocabSize: [...tok.get_vocab().values()].reduce((a, id) => Math.max(a, id + 1), 0),
  };
}
