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
  /** Row -> the first row with the same prompt and response. */
  pairOf: Map<number, number>;
  garbled: number[];
  /** The one row no model scores (its prompt leaves no room for the response), whose response a later row repeats. */
  unscored: number;
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
  const pairOf = new Map<number, number>();
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
    if (i % 2 === 0) pairOf.set(rows.length, of);
    rows.push({
      id: `c${i}`,
      instruction: i % 2 === 0 ? `  ${original.instruction.toUpperCase()}` : `Write another story, number ${i}.`,
      input: "",
      output: original.output.replace(/ /g, "  ").toLowerCase() + "\n",
      source: "copy",
    });
  }
  // A third row with the shared answer under the second one's prompt: a pair of the second, not of the first.
  duplicateOf.set(rows.length, firstRepeated);
  pairOf.set(rows.length, firstRepeated + 1);
  rows.push({ ...rows[firstRepeated + 1]!, id: "t0", source: "repeated" });
  // A story whose prompt fills the model's window (unscored), then the same story under a short prompt: the
  // second is a duplicate, and the only row of its response that can be kept.
  const story = "The little bird sang a happy song in the big green tree.";
  const unscored = rows.length;
  rows.push({ id: "u0", instruction: `Tell a story. ${"The dog ran far away. ".repeat(150)}`, input: "", output: story, source: "fluent" });
  duplicateOf.set(rows.length, unscored);
  rows.push({ id: "u1", instruction: "Write a short story about a bird.", input: "", output: story, source: "fluent" });
  return { rows, duplicateOf, pairOf, garbled: garbledRows, unscored };
}
