// Exact duplicates among the rows, found while they are rendered: a row whose response, normalized, is an
// earlier row's. Normalization: Unicode NFKC, lower case, every run of whitespace as one space, trimmed; so
// "Paris." and " paris.\n" are one response, "Paris" and "Paris." are two. The texts are the rendered parts
// (the template's prompt, the response turns), hashed so that memory is a digest per distinct response.
import { createHash } from "node:crypto";
import type { Part } from "./templates.js";

/** A duplicate row: the first row with its response, and the first with its prompt and response (null: none earlier). */
export interface Duplicate {
  of: number;
  pairOf: number | null;
}

export const normalizeText = (text: string) => text.normalize("NFKC").toLowerCase().replace(/\s+/gu, " ").trim();

// 128 bits of sha256: no collision in any dataset's lifetime, and a short string per distinct response.
const digest = (text: string) => createHash("sha256").update(normalizeText(text)).digest().subarray(0, 16).toString("base64");

export class DuplicateFinder {
  /** Response digest -> the first row with it; response and prompt digests -> the first row with both. */
  private readonly first = new Map<string, number>();
  private readonly firstPair = new Map<string, number>();
  /** The duplicates, by row. */
  readonly found = new Map<number, Duplicate>();

  /** Row `row`'s rendered parts, rows in ascending order. */
  add(row: number, parts: Part[]): void {
    const join = (scored: boolean) =>
      parts
        .filter((p) => p.scored === scored)
        .map((p) => p.text)
        .join("\n");
    const response = digest(join(true));
    const pair = `${response} ${digest(join(false))}`;
    const [first, firstPair] = [this.first.get(response), this.firstPair.get(pair)];
    if (first === undefined) this.first.set(response, row);
    else this.found.set(row, { of: first, pairOf: firstPair ?? null });
    if (firstPair === undefined) this.firstPair.set(pair, row);
  }
}
