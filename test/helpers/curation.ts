// Instruction data with planted junk and duplicates, for the curation tests (flags, select.exclude, the
// report's warnings and decision table): fluent short stories in the words stories260K knows, garbled
// answers, one answer repeated under many prompts, and rows repeating an earlier row with other case and spacing.
import { lcg } from "./rng.js";

const NAMES = ["Lily", "Tom", "Sue", "Ben", "Mia", "Max", "Anna", "Tim"];
const THINGS = ["ball", "cat", "tree", "cake", "dog", "park", "toy", "bird"];
const FEELINGS = ["happy", "sad", "scared", "excited", "tired", "proud"];

export interface CurationRow {
  id: string;
  instruction: string;
  input: string;
  output: string;
  source: "fluent" | "garbled" | "repeated" | "copy";
}

/** The planted rows by kind: which rows are copies of which (normalized equal), and which share one response. */
export interface CurationData {
  rows: CurationRow[];
  /** Row -> the first row with the same normalized response. */
  duplicateOf: Map<number, number>;
  /** Rows whose prompt is the first row's too. */
  pairs: Set<number>;
  garbled: number[];
}

/** `fluent` stories, `garbled` junk answers, `repeated` rows sharing one answer, and `copies` of fluent rows. */
export function curationData(fluent = 60, garbled = 12, repeated = 10, copies = 4): CurationData {
  const rand = lcg(7);
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
  const rows: CurationRow[] = [];
  for (let i = 0; i < fluent; i++) {
    // Distinct for i < 64: no two fluent rows are duplicates.
    const [name, thing, feeling] = [NAMES[i % 8]!, THINGS[Math.floor(i / 8) % 8]!, FEELINGS[i % 6]!];
    rows.push({
      id: `f${i}`,
      instruction: `Write a short story about ${name} and the ${thing}.`,
      input: "",
      output: `Once upon a time, ${name} had a ${thing}. ${name} was very ${feeling}. One day, ${name} went to play with the ${thing} in the sun. They had fun together.`,
      source: "fluent",
    });
  }
  const garbledRows: number[] = [];
  for (let i = 0; i < garbled; i++) {
    const junk = Array.from({ length: 24 }, () =>
      String.fromCharCode(...Array.from({ length: 2 + Math.floor(rand() * 5) }, () => 97 + Math.floor(rand() * 26))),
    ).join(" ");
    garbledRows.push(rows.length);
    rows.push({
      id: `g${i}`,
      instruction: `Write a short story about ${pick(NAMES)}.`,
      input: "",
      output: `${junk} QZX ${Math.floor(rand() * 1e9)}`,
      source: "garbled",
    });
  }
  const duplicateOf = new Map<number, number>();
  const pairs = new Set<number>();
  const firstRepeated = rows.length;
  for (let i = 0; i < repeated; i++) {
    if (i) duplicateOf.set(rows.length, firstRepeated);
    rows.push({
      id: `p${i}`,
      instruction: `Tell me what ${pick(NAMES)} did today, part ${i}.`,
      input: "",
      output: "I am sorry, I cannot help with that request.",
      source: "repeated",
    });
  }
  for (let i = 0; i < copies; i++) {
    const of = 3 * i;
    const original = rows[of]!;
    duplicateOf.set(rows.length, of);
    // The same prompt for the even copies (other case and spacing: normalized equal), another for the odd ones.
    if (i % 2 === 0) pairs.add(rows.length);
    rows.push({
      id: `c${i}`,
      instruction: i % 2 === 0 ? `  ${original.instruction.toUpperCase()}` : `Write another story, number ${i}.`,
      input: "",
      output: original.output.replace(/ /g, "  ").toLowerCase() + "\n",
      source: "copy",
    });
  }
  return { rows, duplicateOf, pairs, garbled: garbledRows };
}
