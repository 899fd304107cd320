// Walks the config schema to list every key with its type, default and help: for CLI flags, `--help`,
// `dlc-prune config keys` and the README's option table.
import type { z } from "zod";
import { configSchema } from "./schema.js";

export interface KeyInfo {
  key: string;
  type: "string" | "number" | "boolean" | "array" | "object";
  choices?: string[];
  default?: unknown;
  description: string;
}

type AnyType = z.core.$ZodType & { description?: string };

interface Unwrapped {
  inner: AnyType;
  default?: unknown;
  description?: string;
}

/** Strips default/prefault/optional/nullable wrappers, keeping the first description and default found. */
function unwrap(t: AnyType): Unwrapped {
  let inner = t;
  let dflt: unknown;
  let description = t.description;
  for (;;) {
    const def = inner._zod.def as { type: string; innerType?: AnyType; defaultValue?: unknown };
    if (!["default", "prefault", "optional", "nullable"].includes(def.type) || !def.innerType) break;
    if ((def.type === "default" || def.type === "prefault") && dflt === undefined) dflt = def.defaultValue;
    inner = def.innerType;
    description ??= inner.description;
  }
  return { inner, default: dflt, description };
}

export function configKeys(): KeyInfo[] {
  const out: KeyInfo[] = [];
  const walk = (t: AnyType, prefix: string) => {
    const { inner, default: dflt, description } = unwrap(t);
    const def = inner._zod.def as { type: string; shape?: Record<string, AnyType>; entries?: Record<string, string> };
    if (def.type === "object" && def.shape) {
      if (prefix && description) out.push({ key: prefix, type: "object", description });
      for (const [k, v] of Object.entries(def.shape)) walk(v, prefix ? `${prefix}.${k}` : k);
      return;
    }
    const type = def.type === "enum" ? "string" : (def.type as KeyInfo["type"]);
    out.push({
      key: prefix,
      type,
      choices: def.entries ? Object.values(def.entries) : undefined,
      default: dflt,
      description: description ?? "",
    });
  };
  walk(configSchema as AnyType, "");
  return out;
}

export function keyInfo(key: string): KeyInfo {
  const info = configKeys().find((k) => k.key === key);
  if (!info) throw new Error(`no config key ${key}`);
  return info;
}

/** A Markdown table of every key: the README's option reference. */
export function keysMarkdown(): string {
  const rows = configKeys().map((k) => {
    const type = k.choices ? k.choices.join(" \\| ") : k.type;
    const dflt = k.default === undefined ? "" : `\`${JSON.stringify(k.default)}\``;
    return `| \`${k.key}\` | ${type} | ${dflt} | ${k.description.replaceAll("|", "\\|")} |`;
  });
  return ["| key | type | default | meaning |", "|---|---|---|---|", ...rows].join("\n");
}
