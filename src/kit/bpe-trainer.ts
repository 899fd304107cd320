// A small SentencePiece-style BPE trainer for the tiny model's tokenizer: words start with "▁", merges never
// cross words, the most frequent adjacent pair is merged first. Deterministic for a given corpus.
import { SPACE } from "./tokenizer-json.js";

export interface TrainedPieces {
  /** Single characters seen in the corpus, most frequent first. */
  alphabet: string[];
  /** Merged pieces in the order they were learned (earlier = higher priority). */
  merged: string[];
}

function wordsOf(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line) continue;
    for (const word of (SPACE + line.replaceAll(" ", SPACE)).split(new RegExp(`(?=${SPACE})`))) {
      counts.set(word, (counts.get(word) ?? 0) + 1);
    }
  }
  return counts;
}

/** Learns up to `maxMerges` merges from `text`; pairs seen fewer than twice are never merged. */
export function trainBpe(text: string, maxMerges: number): TrainedPieces {
  const words = [...wordsOf(text)].map(([w, count]) => ({ symbols: Array.from(w), count }));
  const charCounts = new Map<string, number>();
  for (const { symbols, count } of words) for (const c of symbols) charCounts.set(c, (charCounts.get(c) ?? 0) + count);
  const alphabet = [...charCounts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([c]) => c);

  const merged: string[] = [];
  const known = new Set(alphabet);
  while (merged.length < maxMerges) {
    const pairs = new Map<string, number>();
    for (const { symbols, count } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]}\u0000${symbols[i + 1]}`;
        pairs.set(key, (pairs.get(key) ?? 0) + count);
      }
    }
    let best: string | undefined;
    let bestCount = 1;
    for (const [key, count] of pairs) {
      if (count > bestCount || (count === bestCount && best !== undefined && key < best)) {
        best = key;
        bestCount = count;
      }
    }
    if (best === undefined) break;
    const [left, right] = best.split("\u0000") as [string, string];
    const piece = left + right;
    for (const word of words) {
      const out: string[] = [];
      const s = word.symbols;
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === left && s[i + 1] === right) {
          out.push(piece);
          i++;
        } else out.push(s[i]!);
      }
      word.symbols = out;
    }
    if (!known.has(piece)) {
      known.add(piece);
      merged.push(piece);
    }
  }
  return { alphabet, merged };
}
