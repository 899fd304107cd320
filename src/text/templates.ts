// Prompt rendering: a sample becomes text parts, each marked as response (scored) or prompt (not scored).
import type { Config } from "../config/schema.js";
import { UserError } from "../util/errors.js";
import { instructionText, messagesOf, type Format, type Sample, type Turn } from "../data/formats.js";

export type Template = Exclude<Config["template"], "auto">;

export interface Part {
  text: string;
  scored: boolean;
}

/** Renders a conversation with the tokenizer's chat template (transformers.js apply_chat_template). */
export type ChatRenderer = (messages: Turn[], addGenerationPrompt: boolean) => string;

/** A row the chat template refuses (e.g. roles that do not alternate): that row's problem, not the run's. */
export class TemplateError extends Error {}

// stanford_alpaca's PROMPT_DICT; the response follows "### Response:" directly, no EOS appended.
export const ALPACA_PROMPT_INPUT =
  "Below is an instruction that describes a task, paired with an input that provides further context. " +
  "Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:";
export const ALPACA_PROMPT_NO_INPUT =
  "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n" +
  "### Instruction:\n{instruction}\n\n### Response:";

/** `auto` picks the template a format is normally trained with. */
export function resolveTemplate(template: Template | "auto", format: Format): Template {
  const chatData = format === "sharegpt" || format === "messages";
  if (template === "auto") return chatData ? "chat" : format === "alpaca" ? "alpaca" : "none";
  if (chatData && template !== "chat") throw new UserError(`template ${template} cannot render ${format} conversations; use template chat`);
  return template;
}

function alpacaPrompt(instruction: string, input: string): string {
  // Replace with functions so "$&" and friends in the data stay literal.
  const fill = (t: string) => t.replace("{instruction}", () => instruction).replace("{input}", () => input);
  return fill(input === "" ? ALPACA_PROMPT_NO_INPUT : ALPACA_PROMPT_INPUT);
}

/**
 * Assistant turns are the response; everything else is prompt. Each assistant turn is cut out by rendering
 * the conversation before it (with the generation prompt) and after it: the difference is what the model
 * must produce, including the template's end-of-turn tokens.
 */
function chatParts(messages: Turn[], render: ChatRenderer): Part[] | string {
  const parts: Part[] = [];
  let done = "";
  messages.forEach((m, i) => {
    if (m.role !== "assistant") return;
    const before = render(messages.slice(0, i), true);
    const after = render(messages.slice(0, i + 1), false);
    if (!before.startsWith(done) || !after.startsWith(before))
      throw new TemplateError(
        "the chat template does not render this conversation incrementally, so its assistant turns cannot be told apart",
      );
    parts.push({ text: before.slice(done.length), scored: false }, { text: after.slice(before.length), scored: true });
    done = after;
  });
  return parts;
}

/** The parts to tokenize, or the reason the sample cannot be scored. */
export function renderParts(sample: Sample, template: Template, chat?: ChatRenderer): Part[] | string {
  const messages = messagesOf(sample);
  const assistant = messages.filter((m) => m.role === "assistant");
  if (assistant.length === 0) return "no-assistant-turn";
  if (assistant.every((m) => m.content.trim() === "")) return "empty-response";
  if (template === "chat") {
    if (!chat) throw new UserError("template chat: the tokenizer has no chat template");
    return chatParts(messages, chat);
  }
  if (sample.kind === "chat") throw new Error("unreachable: chat data needs template chat");
  const response = sample.kind === "alpaca" ? sample.output : sample.response;
  const prompt =
    template === "alpaca"
      ? alpacaPrompt(sample.kind === "alpaca" ? sample.instruction : sample.prompt, sample.kind === "alpaca" ? sample.input : "")
      : sample.kind === "alpaca"
        ? instructionText(sample.instruction, sample.input)
        : sample.prompt;
  return [
    { text: prompt, scored: false },
    { text: response, scored: true },
  ];
}
