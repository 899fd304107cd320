// The refinement benchmark (score.refine: boundary vs none): model tokens run, wall time, and how often the
// estimated DLC puts a row on the same side of each boundary as the exact one, on >= 2,000 rows of
// ../shared with stories260K. Every figure of a table comes from runs of this one invocation.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readScoresFile, type ScoresFile } from "../src/contract/file.js";
import { cutRank, describeCut, type Cut } from "../src/contract/cuts.js";
import { selectRows, selectionsOf } from "../src/select/select.js";
import { configSchema } from "../src/config/schema.js";
import type { ScoreResult } from "../src/score/score.js";

type Run = ScoreResult & { maxRssMiB: number };
type Runner = (config: Record<string, unknown>) => Promise<Run>;

/**
 * A mixed instruction pool in Alpaca format, as FINDINGS.md's (Alpaca-cleaned, CodeAlpaca, GSM8K train): the
 * first `counts` rows of each, written to `path`.
 */
export function writePool(shared: string, counts: [number, number, number], path: string): string {
  const alpaca = JSON.parse(readFileSync(join(shared, "datasets/alpaca-cleaned-1k/alpaca_data_cleaned_1000.json"), "utf8")) as object[];
  const code = JSON.parse(readFileSync(join(shared, "datasets/codealpaca/code_alpaca_2k.json"), "utf8")) as object[];
  const gsm = readFileSync(join(shared, "datasets/gsm8k/train.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { question: string; answer: string })
    .map((r) => ({ instruction: r.question, input: "", output: r.answer }));
  const rows = [...alpaca.slice(0, counts[0]), ...code.slice(0, counts[1]), ...gsm.slice(0, counts[2])];
  writeFileSync(path, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  return path;
}

/** Rows (by index) before the boundary in ascending DLC (ties by row), among the scored rows. */
function before(scores: ScoresFile, cut: Cut): Set<number> {
  const { dlc } = scores.cols;
  const rows = [...dlc.keys()].filter((r) => !Number.isNaN(dlc[r]!)).sort((a, b) => dlc[a]! - dlc[b]! || a - b);
  return new Set(rows.slice(0, cutRank(cut, rows.length)));
}

/** Share of scored rows on the same side of `cut` in both files. */
function agreement(a: ScoresFile, b: ScoresFile, cut: Cut): number {
  const [x, y] = [before(a, cut), before(b, cut)];
  const n = a.cols.dlc.filter((v) => !Number.isNaN(v)).length;
  let same = 0;
  for (let r = 0; r < a.cols.dlc.length; r++) if (!Number.isNaN(a.cols.dlc[r]!) && x.has(r) === y.has(r)) same++;
  return same / n;
}

/** Selections of `select` (a partial config) from both files, seeds 0-2: how many (seed, ratio) draws keep the same rows. */
function sameKept(a: ScoresFile, b: ScoresFile, select: Record<string, unknown>): { same: number; of: number } {
  let same = 0;
  let of = 0;
  for (const seed of [0, 1, 2]) {
    const cfg = configSchema.parse({ data: { path: "x" }, select: { ...select, seed } }).select;
    for (const choice of selectionsOf(cfg)) {
      const [x, y] = [selectRows(a, cfg, null, choice), selectRows(b, cfg, null, choice)];
      x.ratios.forEach((r, i) => {
        of++;
        if (r.keep.every((v, row) => v === y.ratios[i]!.keep[row])) same++;
      });
    }
  }
  return { same, of };
}

export async function benchRefinement(
  stories: string,
  shared: string,
  tmp: string,
  runScore: Runner,
  set: (o: Record<string, unknown>) => Record<string, unknown>,
  table: (rows: string[][]) => void,
): Promise<void> {
  const data = writePool(shared, [800, 800, 600], join(tmp, "refine-pool.jsonl"));
  const ratios = [0.1, 0.3, 0.5];
  const rows: string[][] = [
    [
      "levels",
      "selection refined for",
      "tokens run",
      "vs none",
      "wall (s)",
      "vs none",
      "exact rows",
      "same side of each boundary",
      "same kept rows (seeds 0-2)",
    ],
  ];
  for (const [levels, interval] of [
    [3, 0.2],
    [10, 0.1],
  ] as const) {
    const base = {
      "data.path": data,
      "model.path": stories,
      template: "alpaca",
      "score.max_tokens": 256,
      "score.levels": levels,
      "score.interval": interval,
      "select.ratios": ratios,
    };
    const noneOut = join(tmp, `refine-none-${levels}.arrow`);
    const none = await runScore(set({ ...base, "score.out": noneOut }));
    const exact = await readScoresFile(noneOut);
    const n = exact.cols.dlc.filter((v) => !Number.isNaN(v)).length;
    rows.push([
      String(levels),
      "(none: exact DLC)",
      String(none.tokensProcessed),
      "1.000",
      none.seconds.total.toFixed(1),
      "1.000",
      String(n),
      "",
      "",
    ]);
    const selects: Record<string, unknown>[] = [0.25, 0.5, 0.75].map((split) => ({ strategy: "flexrand", split, ratios }));
    if (levels === 3) selects.push({ strategies: ["easy", "hard"], ratios });
    for (const select of selects) {
      const out = join(tmp, `refine-${levels}.arrow`);
      const flat = Object.fromEntries(Object.entries(select).map(([k, v]) => [`select.${k}`, v]));
      const run = await runScore(set({ ...base, ...flat, "score.refine": "boundary", "score.out": out }));
      const refined = await readScoresFile(out);
      const cuts = refined.meta.refine!.cuts;
      const sides = cuts.map((c) => `${describeCut(c)}: ${(100 * agreement(exact, refined, c)).toFixed(2)}%`).join(", ");
      const kept = sameKept(exact, refined, select);
      rows.push([
        String(levels),
        cuts.map(describeCut).join(", "),
        String(run.tokensProcessed),
        (run.tokensProcessed / none.tokensProcessed).toFixed(3),
        run.seconds.total.toFixed(1),
        (run.seconds.total / none.seconds.total).toFixed(3),
        String(refined.cols.dlcExact!.reduce((a, v) => a + v, 0)),
        sides,
        `${kept.same}/${kept.of}`,
      ]);
    }
  }
  console.log(
    `\nrefinement: stories260K on ${data.split("/").pop()} (2,200 rows: 800 Alpaca-cleaned, 800 CodeAlpaca, 600 GSM8K), default refine_sample 0.05 and refine_confidence 0.99999`,
  );
  table(rows);
  console.log(
    "tokens run: non-padding tokens through the model over all passes. same side: share of scored rows on the same side of the boundary by refined and by exact DLC.",
  );
}
