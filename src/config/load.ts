// YAML recipes + command-line overrides -> one validated Config. Errors name the file and the key.
import { readFile } from "node:fs/promises";
import YAML from "yaml";
import type { z } from "zod";
import { UserError, readingFile } from "../util/errors.js";
import { PRESETS, configSchema, type Config } from "./schema.js";

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** Sets `a.b.c` in a nested object, creating the levels on the way. */
export function setPath(target: Obj, path: string, value: unknown): void {
  const keys = path.split(".");
  let at = target;
  for (const k of keys.slice(0, -1)) {
    if (!isObj(at[k])) at[k] = {};
    at = at[k] as Obj;
  }
  at[keys[keys.length - 1]!] = value;
}

/** `--set key=value` pairs; values are YAML (numbers, booleans, [lists], null). */
export function parseSets(sets: string[]): [string, unknown][] {
  return sets.map((s) => {
    const eq = s.indexOf("=");
    if (eq <= 0) throw new UserError(`--set ${s}: expected key=value, e.g. --set score.levels=5`);
    const raw = s.slice(eq + 1);
    let value: unknown;
    try {
      value = YAML.parse(raw);
    } catch {
      value = raw;
    }
    return [s.slice(0, eq), value === null && raw !== "null" && raw !== "~" ? raw : value];
  });
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const key = issue.path.join(".");
  if (issue.code === "unrecognized_keys") {
    const names = issue.keys.map((k) => (key ? `${key}.${k}` : k));
    return `unknown key${names.length > 1 ? "s" : ""} ${names.join(", ")}`;
  }
  if (issue.code === "invalid_type" && issue.input === undefined) return `missing key ${key}`;
  return `key ${key || "(root)"}: ${issue.message}`;
}

/** `raw` validated by `schema`, or a one-line error naming `source` and the key. */
export function parseWith<T>(schema: z.ZodType<T>, raw: unknown, source: string): T {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new UserError(`${source}: ${describeIssue(parsed.error.issues[0]!)}`);
  return parsed.data;
}

/** Validates a raw object (already merged from YAML and overrides) into a Config. */
export function parseConfig(raw: Obj, source: string): Config {
  // A preset supplies levels / interval / scope unless the recipe sets them.
  const score = isObj(raw.score) ? raw.score : undefined;
  const preset = score?.preset;
  if (typeof preset === "string" && preset in PRESETS) {
    raw = { ...raw, score: { ...PRESETS[preset as keyof typeof PRESETS], ...score } };
  }
  return parseWith(configSchema, raw, source);
}

export interface ConfigSources {
  /** A YAML recipe. */
  file?: string;
  /** Overrides by dotted key, applied in order after the file (CLI flags, --set). */
  overrides?: [string, unknown][];
}

export async function loadConfig(src: ConfigSources): Promise<Config> {
  let raw: Obj = {};
  if (src.file) {
    const text = await readingFile(src.file, () => readFile(src.file!, "utf8"));
    let doc: unknown;
    try {
      doc = YAML.parse(text);
    } catch (err) {
      throw new UserError(`${src.file}: not valid YAML: ${(err as Error).message.split("\n")[0]}`);
    }
    if (doc !== null && doc !== undefined && !isObj(doc)) throw new UserError(`${src.file}: expected a mapping of keys at the top level`);
    raw = (doc as Obj | null) ?? {};
  }
  for (const [key, value] of src.overrides ?? []) if (value !== undefined) setPath(raw, key, value);
  return parseConfig(raw, src.file ?? "command line");
}
