// The duplicate rule (README "Curation"): responses equal after NFKC, lower case and collapsed whitespace.
import { describe, expect, it } from "vitest";
import { DuplicateFinder, normalizeText } from "../../src/text/duplicates.js";

const row = (prompt: string, response: string) => [
  { text: prompt, scored: false },
  { text: response, scored: true },
];

describe("duplicates", () => {
  it("normalize by NFKC, lower case and whitespace, and nothing else", () => {
    expect(normalizeText("  The ﬁne\u00a0ＰＡＲＩＳ\t\n  café ")).toBe("the fine paris café");
    expect(normalizeText("Paris.")).not.toBe(normalizeText("Paris"));
    expect(normalizeText("cafe\u0301")).toBe(normalizeText("café")); // a combining accent composes
  });

  it("flag each later row with the first row of its response, and the first of its prompt and response", () => {
    const found = new DuplicateFinder();
    found.add(0, row("Capital of France?", "Paris."));
    found.add(1, row("Capital of Italy?", "Rome."));
    found.add(2, row("CAPITAL  of france?", " paris.\n"));
    found.add(3, row("Where is the Louvre?", "PARIS."));
    found.add(4, row("Capital of Italy?", "Rome"));
    found.add(5, row("Where is the Louvre?", "Paris."));
    expect([...found.found]).toEqual([
      [2, { of: 0, pairOf: 0 }],
      [3, { of: 0, pairOf: null }],
      [5, { of: 0, pairOf: 3 }], // an exact pair of row 3, which is not row 0's pair
    ]);
  });
});
