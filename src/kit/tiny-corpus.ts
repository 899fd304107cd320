// A seeded, instruction-flavoured English text for training the tiny model's tokenizer offline.
// Its content does not matter much (the tiny model's weights are random); it gives the BPE realistic
// word pieces so that token counts of real instruction data look like those of a real tokenizer.
import { createRng, type Rng } from "../util/rng.js";
import { uniformInt } from "pure-rand/distribution/uniformInt";

const WORDS = {
  start: [
    "Write",
    "Explain",
    "Describe",
    "List",
    "Summarize",
    "Translate",
    "Classify",
    "Give",
    "Create",
    "Find",
    "Calculate",
    "Compare",
    "Rewrite",
    "Generate",
    "Identify",
    "Suggest",
  ],
  det: ["a", "the", "this", "that", "each", "every", "some", "one", "two", "three", "five", "ten"],
  adj: [
    "short",
    "simple",
    "clear",
    "small",
    "large",
    "new",
    "old",
    "good",
    "important",
    "different",
    "possible",
    "healthy",
    "happy",
    "quick",
    "formal",
    "creative",
    "main",
    "common",
    "best",
    "following",
  ],
  noun: [
    "story",
    "poem",
    "sentence",
    "paragraph",
    "list",
    "example",
    "question",
    "answer",
    "program",
    "function",
    "number",
    "word",
    "reason",
    "idea",
    "plan",
    "letter",
    "email",
    "recipe",
    "summary",
    "article",
    "customer",
    "student",
    "teacher",
    "company",
    "product",
    "city",
    "country",
    "computer",
    "water",
    "energy",
    "time",
    "people",
    "world",
    "problem",
    "result",
    "data",
    "language",
    "code",
    "table",
    "movie",
  ],
  verb: [
    "is",
    "are",
    "was",
    "has",
    "have",
    "makes",
    "helps",
    "uses",
    "shows",
    "gives",
    "takes",
    "needs",
    "explains",
    "describes",
    "returns",
    "contains",
    "improves",
    "changes",
    "creates",
    "finds",
  ],
  prep: ["about", "for", "with", "from", "into", "of", "in", "on", "to", "by", "without", "between"],
  conj: ["and", "but", "because", "so", "while", "when", "if", "although"],
};

function pick(rng: Rng, list: string[]): string {
  return list[uniformInt(rng, 0, list.length - 1)]!;
}

function sentence(rng: Rng): string {
  const np = () => `${pick(rng, WORDS.det)} ${uniformInt(rng, 0, 1) ? pick(rng, WORDS.adj) + " " : ""}${pick(rng, WORDS.noun)}`;
  switch (uniformInt(rng, 0, 3)) {
    case 0:
      return `${pick(rng, WORDS.start)} ${np()} ${pick(rng, WORDS.prep)} ${np()}.`;
    case 1:
      return `${np()} ${pick(rng, WORDS.verb)} ${np()} ${pick(rng, WORDS.conj)} ${np()} ${pick(rng, WORDS.verb)} ${np()}.`;
    case 2:
      return `What ${pick(rng, WORDS.verb)} ${np()} ${pick(rng, WORDS.prep)} ${np()}?`;
    default:
      return `${uniformInt(rng, 1, 9999)} ${pick(rng, WORDS.noun)}s, ${uniformInt(rng, 0, 100)}% ${pick(rng, WORDS.adj)}: ${np()} (${pick(rng, WORDS.noun)}).`;
  }
}

export function tinyCorpus(seed: number, sentences = 4000): string {
  const rng = createRng(seed);
  const lines: string[] = [];
  for (let i = 0; i < sentences; i++) {
    const s = sentence(rng);
    lines.push(s.charAt(0).toUpperCase() + s.slice(1));
  }
  return lines.join("\n");
}
