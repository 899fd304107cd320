// The select stage: which rows each selection (a strategy ranking by a score) keeps at each keep ratio, from
// the scores (and the stratification field).
import type { SelectConfig, SelectionsConfig } from "../config/schema.js";
import type { ScoreName, ScoresFile } from "../contract/file.js";
import { easyIntervalSize } from "../contract/cuts.js";
import { hasScore } from "../contract/status.js";
import { pyRound } from "../util/math.js";
import { UserError } from "../util/errors.js";
import { createRng, permutation, seedFor } from "../util/rng.js";
import { apportion } from "./apportion.js";
import { drawGroup, flexrandShares, type Quota, type Scored, type Strategy } from "./strategies.js";

export interface RatioSelection {
  ratio: number;
  /** 1 where the row is kept, per input row. */
  keep: Uint8Array;
  /** Scored rows kept, and (flexrand) how many came from the easy and the hard interval. */
  kept: number;
  easy: number;
  hard: number;
}

/** One selection of a run: a strategy, the score it ranks by, and its name (its outputs' folder prefix). */
export interface SelectionChoice {
  name: string;
  strategy: Strategy;
  by: ScoreName;
}

export interface Selection {
  choice: SelectionChoice;
  ratios: RatioSelection[];
  /** Rows the selection draws from (with the score it ranks by, not excluded), and those select.exclude set aside (never kept). */
  scored: number;
  excluded: number;
  /** Rows without the score the selection ranks by, in row order. */
  unscored: number[];
  /** FlexRand without stratification: the score halfway between the easy and the hard interval. */
  splitScore: number | null;
}

/** select.strategies (or [select.strategy]), each ranking by its own `by` or select.by: named "hard", "hard-by-ifd". */
export function selectionsOf(cfg: SelectionsConfig): SelectionChoice[] {
  const choices = (cfg.strategies ?? [cfg.strategy]).map((c) => {
    const { strategy, by = cfg.by } = typeof c === "string" ? { strategy: c } : c;
    return { name: by === "dlc" ? strategy : `${strategy}-by-${by}`, strategy, by };
  });
  const names = choices.map((c) => c.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new UserError(`select.strategies: ${twice} is listed twice`);
  return choices;
}

const NULL_GROUP = "\u0000null";

/**
 * Each group's quota at keep ratio `ratio`: the strategy's counts are rounded once over all scored rows, then
 * shared out among the groups in proportion to their sizes (src/select/apportion). With one group this is
 * exactly the unstratified count.
 */
export function groupQuotas(sizes: number[], ratio: number, cfg: Pick<SelectConfig, "strategy" | "split">, tieRank: number[]): Quota[] {
  const n = sizes.reduce((a, b) => a + b, 0);
  if (ratio === 1) return sizes.map((rows) => ({ rows, easy: 0, hard: 0, all: true }));
  if (cfg.strategy !== "flexrand")
    return apportion(pyRound(n * ratio), sizes, sizes, tieRank).map((rows) => ({ rows, easy: 0, hard: 0, all: false }));
  const shares = flexrandShares(ratio, cfg.split);
  const easySizes = sizes.map((s) => easyIntervalSize(s, cfg.split));
  const easy = apportion(pyRound(n * shares.easy), sizes, easySizes, tieRank);
  // The hard interval breaks ties the other way round: a budget smaller than the number of groups spreads
  // over as many groups as it can.
  const hard = apportion(
    pyRound(n * shares.hard),
    sizes,
    sizes.map((s, g) => s - easySizes[g]!),
    tieRank.map((r) => -r),
  );
  return sizes.map((_, g) => ({ rows: easy[g]! + hard[g]!, easy: easy[g]!, hard: hard[g]!, all: false }));
}

/** The rows a selection draws from, by stratification group; those without its score; those select.exclude set aside. */
function poolOf(
  { cols }: ScoresFile,
  choice: SelectionChoice,
  stratify: (string | null)[] | null,
  excluded: (string | null)[] | null,
): { groups: Map<string, Scored[]>; unscored: number[]; excludedRows: number } {
  const values = cols[choice.by];
  if (!values)
    throw new UserError(`select.by ${choice.by} (${choice.name}): the scores file has no ${choice.by} column; score with score.ifd: true`);
  const groups = new Map<string, Scored[]>();
  const unscored: number[] = [];
  let excludedRows = 0;
  for (let i = 0; i < cols.dlc.length; i++) {
    const row = cols.row[i]!;
    // Excluded first: a row set aside (it has a DLC) is never kept, not even as unscored by this selection's score.
    if (excluded?.[i]) {
      excludedRows++;
      continue;
    }
    if (!hasScore(values[i]!)) {
      unscored.push(row);
      continue;
    }
    const key = stratify ? (stratify[row] ?? NULL_GROUP) : "";
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push({ row, score: values[i]! });
  }
  return { groups, unscored, excludedRows };
}

/**
 * Applies the strategy to all scored rows but the excluded ones (`excluded`: a reason per row, src/select/exclude),
 * or within each stratification group. Rows without a score are kept in every output or in none (`unscored`).
 * A ratio that would keep no scored row is an error.
 */
export function selectRows(
  scores: ScoresFile,
  cfg: SelectConfig,
  stratify: (string | null)[] | null,
  choice: SelectionChoice = selectionsOf(cfg)[0]!,
  excluded: (string | null)[] | null = null,
): Selection {
  const n = scores.cols.dlc.length;
  const { groups, unscored, excludedRows } = poolOf(scores, choice, stratify, excluded);
  // Groups in sorted order: the draws do not depend on the order rows come in; ties of the share-out follow
  // a seeded order of the groups.
  const keys = [...groups.keys()].sort();
  const sizes = keys.map((k) => groups.get(k)!.length);
  const tieRank = new Array<number>(keys.length);
  permutation(createRng(seedFor(cfg.seed, "\u0000groups")), keys.length).forEach((g, rank) => (tieRank[g] = rank));
  const perRatio = cfg.ratios.map((ratio) => groupQuotas(sizes, ratio, { strategy: choice.strategy, split: cfg.split }, tieRank));
  // A scores file covers rows 0..n-1 (shards are merged first).
  const ratios: RatioSelection[] = cfg.ratios.map((ratio) => ({ ratio, keep: new Uint8Array(n), kept: 0, easy: 0, hard: 0 }));
  let splitScore: number | null = null;
  keys.forEach((key, g) => {
    const draw = drawGroup(
      groups.get(key)!,
      perRatio.map((q) => q[g]!),
      { strategy: choice.strategy, split: cfg.split, seed: cfg.seed, nested: cfg.nested, group: key },
    );
    draw.kept.forEach((kept, i) => {
      const r = ratios[i]!;
      for (const row of kept) r.keep[row] = 1;
      r.kept += kept.length;
      r.easy += draw.easy[i]!;
      r.hard += draw.hard[i]!;
    });
    if (keys.length === 1) splitScore = draw.splitScore;
  });
  const scored = n - unscored.length - excludedRows;
  if (scored === 0 && excludedRows)
    throw new UserError(
      `select.exclude set aside all ${excludedRows} scored rows: ${choice.name} has none left to select from; relax select.exclude`,
    );
  for (const r of ratios)
    if (r.kept === 0)
      throw new UserError(
        `select.ratios ${r.ratio}: ${choice.name} keeps none of the ${scored} scored rows${excludedRows ? ` left after select.exclude (${excludedRows} excluded)` : ""}${cfg.stratify ? ` (stratified by ${cfg.stratify})` : ""}; raise the ratio`,
      );
  if (cfg.unscored === "keep") for (const r of ratios) for (const row of unscored) r.keep[row] = 1;
  return { choice, ratios, scored, excluded: excludedRows, unscored, splitScore };
}
