// Instruction-data formats -> one Sample type. A row that does not fit its format gets an error naming
// the row (file:line) and the field.
import { UserError } from "../util/errors.js";
import type { Config, Fields } from "../config/schema.js";
import { isUtf8 } from "node:buffer";
import { fieldOf, type RawRow, type RowValue } from "./read.js";

export type Format = Exclude<Config["data"]["format"], "auto">;

export interface Turn {
  role: string;
  content: string;
}

/** What a row says, whatever its format: a prompt part and a response part, or a conversation. */
export type Sample =
  | { kind: "alpaca"; instruction: string; input: string; output: string }
  | { kind: "prompt_response"; prompt: string; response: string }
  | { kind: "chat"; messages: Turn[] };

/** A row that cannot be scored for a reason of its own (bad field); `on_error` decides what happens. */
export class RowError extends Error {
  constructor(
    readonly where: string,
    readonly reason: string,
  ) {
    super(`${where}: ${reason}`);
  }
}

const PROMPT_ALTERNATIVES = ["question", "query"];
const RESPONSE_ALTERNATIVES = ["answer", "completion", "output"];

export interface ResolvedFormat {
  format: Format;
  fields: Fields;
}

/** The configured format, or (auto) the one the first row's keys show. */
export function resolveFormat(format: Format | "auto", fields: Fields, first: RowValue, file: string): ResolvedFormat {
  return format === "auto" ? detectFormat(first, fields, file) : { format, fields };
}

/** Picks the format (and, for prompt/response data, the field names) from the first row's keys. */
function detectFormat(first: RowValue, fields: Fields, file: string): ResolvedFormat {
  const has = (k: string) => Object.hasOwn(first, k);
  if (has(fields.conversations)) return { format: "sharegpt", fields };
  if (has(fields.messages)) return { format: "messages", fields };
  if (has(fields.instruction) && has(fields.output)) return { format: "alpaca", fields };
  const prompt = [fields.prompt, ...PROMPT_ALTERNATIVES].find(has);
  const response = [fields.response, ...RESPONSE_ALTERNATIVES].find(has);
  if (prompt && response) return { format: "prompt_response", fields: { ...fields, prompt, response } };
  throw new UserError(
    `${file}: cannot tell the data format from the first row's fields [${Object.keys(first).join(", ")}]; ` +
      `set data.format (alpaca, prompt_response, sharegpt, messages) and data.fields`,
  );
}

function text(raw: RawRow, field: string, optional = false): string {
  let v = fieldOf(raw.value!, field);
  // A Parquet binary column without a text annotation holds the text's bytes.
  if (v instanceof Uint8Array && isUtf8(v)) v = new TextDecoder().decode(v);
  if (v === undefined || v === null) {
    if (optional) return "";
    throw new RowError(raw.where, `missing field "${field}"`);
  }
  if (typeof v !== "string") throw new RowError(raw.where, `field "${field}" is ${Array.isArray(v) ? "a list" : typeof v}, expected text`);
  return v;
}

const SHAREGPT_ROLES: Record<string, string> = {
  human: "user",
  user: "user",
  gpt: "assistant",
  assistant: "assistant",
  chatgpt: "assistant",
  bard: "assistant",
  bing: "assistant",
  model: "assistant",
  system: "system",
};

function turns(raw: RawRow, field: string, roleKey: string, contentKey: string, roles?: Record<string, string>): Turn[] {
  const list = fieldOf(raw.value!, field);
  if (list === undefined || list === null) throw new RowError(raw.where, `missing field "${field}"`);
  if (!Array.isArray(list)) throw new RowError(raw.where, `field "${field}" is ${typeof list}, expected a list of turns`);
  return list.map((t: unknown, i) => {
    const at = `${field}[${i}]`;
    if (typeof t !== "object" || t === null) throw new RowError(raw.where, `${at} is not an object`);
    const turn = t as RowValue;
    const role = fieldOf(turn, roleKey);
    const content = fieldOf(turn, contentKey);
    if (typeof role !== "string") throw new RowError(raw.where, `${at}.${roleKey} is missing or not text`);
    if (typeof content !== "string") throw new RowError(raw.where, `${at}.${contentKey} is missing or not text`);
    if (!roles) {
      if (!role) throw new RowError(raw.where, `${at}.${roleKey} is empty`);
      return { role, content };
    }
    const key = role.toLowerCase();
    if (!Object.hasOwn(roles, key))
      throw new RowError(raw.where, `${at}.${roleKey} "${role}" is not a known role (${Object.keys(roles).join(", ")})`);
    return { role: roles[key]!, content };
  });
}

export function toSample(raw: RawRow, { format, fields }: ResolvedFormat): Sample {
  if (raw.error) throw new RowError(raw.where, raw.error);
  switch (format) {
    case "alpaca":
      return {
        kind: "alpaca",
        instruction: text(raw, fields.instruction),
        input: text(raw, fields.input, true),
        output: text(raw, fields.output),
      };
    case "prompt_response":
      return { kind: "prompt_response", prompt: text(raw, fields.prompt), response: text(raw, fields.response) };
    case "sharegpt":
      return { kind: "chat", messages: turns(raw, fields.conversations, "from", "value", SHAREGPT_ROLES) };
    case "messages":
      return { kind: "chat", messages: turns(raw, fields.messages, "role", "content") };
  }
}

/** The user turn of a single-turn sample: the instruction, then its input after a blank line. */
export function instructionText(instruction: string, input: string): string {
  return input ? `${instruction}\n\n${input}` : instruction;
}

/** A sample as a conversation: chat data as it is, single-turn data as one user and one assistant turn. */
export function messagesOf(s: Sample): Turn[] {
  if (s.kind === "chat") return s.messages;
  return [
    { role: "user", content: s.kind === "alpaca" ? instructionText(s.instruction, s.input) : s.prompt },
    { role: "assistant", content: s.kind === "alpaca" ? s.output : s.response },
  ];
}

/** A row field's value as text for ids and groups (numbers and booleans too; null when absent). */
export function fieldText(value: RowValue | undefined, field: string | null): string | null {
  if (!field || !value) return null;
  const v = fieldOf(value, field);
  if (v === undefined || v === null) return null;
  return typeof v === "string" ? v : typeof v === "object" ? JSON.stringify(v) : String(v);
}
