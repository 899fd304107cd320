import type { z } from "zod";

/** `text` as JSON validated by `schema`: the value, or why not ("not valid JSON", "levels: expected number"). */
export function parseJson<T>(schema: z.ZodType<T>, text: string): { value: T } | { why: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { why: "not valid JSON: truncated?" };
  }
  const parsed = schema.safeParse(raw);
  if (parsed.success) return { value: parsed.data };
  const issue = parsed.error.issues[0]!;
  return { why: `${issue.path.join(".") || "top level"}: ${issue.message}` };
}
