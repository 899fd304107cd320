// YAML recipes + command-line overrides -> one validated Config. Errors name the file and the key.
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, relative, resolve } from "node:path";
import YAML from "yaml";
import type { z } from "zod";
import { UserError, readingFile } from "../util/errors.js";
import { configKeys } from "./keys.js";
import { PATH_KEYS, PRESETS, configSchema, type Config } from "./schema.js";

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Applies `f` to the path-valued keys (PATH_KEYS) of a raw or parsed config where they hold text: recipes
 * resolve them from the recipe's folder, manifests store them relative to the manifest.
 */
export function mapPaths(config: Obj, f: (path: string) => string): void {
  for (const key of PATH_KEYS) {
    const [section, name] = key.split(".") as [string, string];
    const at = config[section];
    if (!isObj(at)) continue;
    const v = at[name];
    if (typeof v === "string") at[name] = f(v);
    else if (Array.isArray(v)) at[name] = v.map((x) => (typeof x === "string" ? f(x) : x));
  }
}

/** Names that would reach an object's prototype instead of a key of the config: refused wherever a key is named. */
const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);

function checkKeyName(key: string, where: string): void {
  if (FORBIDDEN_KEYS.has(key)) throw new UserError(`${where}: ${key} cannot be a config key (see dlc-prune config keys)`);
}

/** Refuses prototype-reaching key names anywhere in a parsed YAML document. */
function checkKeyNames(value: unknown, path: string, source: string): void {
  if (Array.isArray(value)) value.forEach((v, i) => checkKeyNames(v, `${path}[${i}]`, source));
  else if (isObj(value))
    for (const [k, v] of Object.entries(value)) {
      checkKeyName(k, `${source}: key ${path ? `${path}.` : ""}${k}`);
      checkKeyNames(v, path ? `${path}.${k}` : k, source);
    }
}

/** Sets `a.b.c` in a nested object, creating the levels on the way. */
export function setPath(target: Obj, path: string, value: unknown): void {
  const keys = path.split(".");
  for (const k of keys) checkKeyName(k, `key ${path}`);
  let at = target;
  for (const k of keys.slice(0, -1)) {
    if (!isObj(at[k])) at[k] = {};
    at = at[k] as Obj;
  }
  at[keys[keys.length - 1]!] = value;
}

/** An override of one config key, and where it came from for messages ("--set score.levels=5", "--ratio"). */
export type Override = [key: string, value: unknown, from?: string];

/** `--set key=value` pairs; values are YAML (numbers, booleans, [lists], null). */
export function parseSets(sets: string[]): Override[] {
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
    return [s.slice(0, eq), value === null && raw !== "null" && raw !== "~" ? raw : value, `--set ${s}`];
  });
}

const EXPECTED: Record<string, string> = {
  array: "a list, e.g. [0.1, 0.3]",
  int: "a whole number",
  number: "a number",
  string: "text",
  boolean: "true or false",
  object: "a mapping of keys",
};

function describeValue(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/** Edits (insert, delete, replace one character) that turn `a` into `b`. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** The config key nearest to a mistyped one (a typo, a missing plural), when it is near enough to be meant. */
function closestKey(name: string): string | undefined {
  const [best] = configKeys()
    .map((k) => ({ key: k.key, d: editDistance(name, k.key) }))
    .sort((a, b) => a.d - b.d);
  return best && best.d <= Math.max(2, Math.floor(name.length / 5)) ? best.key : undefined;
}

/** A one-line reason naming the key, what it expects, the value given, and where the value came from. */
function describeIssue(issue: z.core.$ZodIssue, originOf: (path: PropertyKey[]) => string): string {
  const key = issue.path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i ? "." : ""}${String(p)}`)).join("");
  if (issue.code === "unrecognized_keys") {
    const names = issue.keys.map((k) => (key ? `${key}.${k}` : k));
    const near = closestKey(names[0]!);
    return `unknown key${names.length > 1 ? "s" : ""} ${names.join(", ")} (${originOf([...issue.path, issue.keys[0]!])})${near ? `; did you mean ${near}?` : ""}`;
  }
  if (issue.code === "invalid_type" && issue.input === undefined) return `missing key ${key}`;
  const expected =
    issue.code === "invalid_type"
      ? `expected ${EXPECTED[issue.expected] ?? issue.expected}`
      : issue.code === "invalid_value"
        ? `expected one of ${issue.values.map(String).join(", ")}`
        : issue.message;
  return `key ${key || "(root)"}: ${expected}, got ${describeValue(issue.input)} (${originOf(issue.path)})`;
}

/** `raw` validated by `schema`, or a one-line error naming `source` and the key. */
export function parseWith<T>(
  schema: z.ZodType<T>,
  raw: unknown,
  source: string,
  originOf: (path: PropertyKey[]) => string = () => source,
): T {
  const parsed = schema.safeParse(raw, { reportInput: true });
  if (!parsed.success) throw new UserError(`${source}: ${describeIssue(parsed.error.issues[0]!, originOf)}`);
  return parsed.data;
}

/** Validates a raw object (already merged from YAML and overrides) into a Config; `origins`: dotted key -> where it was set. */
export function parseConfig(raw: Obj, source: string, origins: Map<string, string> = new Map()): Config {
  // A preset supplies levels / interval / scope unless the recipe sets them.
  const score = isObj(raw.score) ? raw.score : undefined;
  const preset = score?.preset;
  if (typeof preset === "string" && preset in PRESETS) {
    raw = { ...raw, score: { ...PRESETS[preset as keyof typeof PRESETS], ...score } };
  }
  // The override that set this key, or a key above it; else the file.
  const originOf = (path: PropertyKey[]) => {
    for (let n = path.length; n > 0; n--) {
      const from = origins.get(path.slice(0, n).join("."));
      if (from) return `from ${from}`;
    }
    return `in ${source}`;
  };
  return parseWith(configSchema, raw, source, originOf);
}

export interface ConfigSources {
  /** A YAML recipe. Its relative paths are relative to the file's folder. */
  file?: string;
  /** Overrides by dotted key, applied in order after the file (CLI flags, --set); their paths are relative to the working directory. */
  overrides?: Override[];
}

/** A path of the recipe, relative to the recipe's folder, as the process sees it (relative to its working directory). */
function fromRecipe(dir: string, path: string): string {
  return isAbsolute(path) ? path : relative(process.cwd(), resolve(dir, path)) || ".";
}

export async function loadConfig(src: ConfigSources): Promise<Config> {
  if (src.file !== undefined && src.file.trim() === "")
    throw new UserError("--config: the file name is empty; name a YAML recipe (e.g. configs/alpaca.yaml)");
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
    checkKeyNames(raw, "", src.file);
    mapPaths(raw, (p) => fromRecipe(dirname(src.file!), p));
  }
  const origins = new Map<string, string>();
  for (const [key, value, from] of src.overrides ?? []) {
    if (value === undefined) continue;
    setPath(raw, key, value);
    origins.set(key, from ?? "overrides");
  }
  return parseConfig(raw, src.file ?? "command line", origins);
}
