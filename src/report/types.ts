// report.json's shape (every number the page shows), and what the report stage reads.
import type { ScoresFile } from "../contract/file.js";
import type { WrittenBody } from "../contract/manifest.js";
import type { Selection } from "../select/select.js";
import type { RefineSummary } from "../contract/cuts.js";
import type { Axis } from "./figures.js";

/** One run's outputs as the report reads them. */
export interface ReportSource {
  /** How the report names the run: "." for the folder the report is in, else the folder as the user named it. */
  label: string;
  /** Its manifest's body, paths relative to the report's folder. */
  body: WrittenBody;
  scores: ScoresFile;
  /** Its selections, recomputed from the scores (they are deterministic). */
  selections: Selection[];
  /** select.exclude's reason per row; null without rules. */
  excluded: (string | null)[] | null;
  /** data.fields.group per row, when configured. */
  group: (string | null)[] | null;
}

/** An example row's prompt and response (its turns of each side joined), as the executor read them from the data. */
export interface ExampleText {
  prompt: string;
  response: string;
}

export interface RunSummary {
  label: string;
  model: string;
  /** model.tiny: the demo's model with random weights. */
  random_model: boolean;
  rows: number;
  scored: number;
  by_status: Record<string, number>;
  /** mean_loss: per level, over the mean_loss_rows rows that ran every level (with score.refine, those with exact DLC). */
  masking: {
    levels: number;
    method: string;
    scope: string;
    interval: number;
    sparsities: number[];
    mean_loss: number[];
    mean_loss_rows: number;
  };
  ifd: boolean;
  /** score.refine: boundary: rows with exact and estimated DLC and the expected side-agreement (the manifest's); null without. */
  refine: RefineSummary | null;
  /** The scores file's flags (the manifest's), and the rows select.exclude set aside, by rule (null without rules). */
  flags: { duplicates: number; duplicate_pairs: number; outliers: number; outlier_k: number };
  excluded: { rows: number; by_reason: Record<string, number>; by_status: Record<string, number> } | null;
  /** data.fields.group: the field the rows' groups come from; null without. */
  group: string | null;
  /**
   * Every scored row, for the decision table's reference line: mean DLC and loss0, response tokens, those
   * flagged duplicate, and the share of each group (the 5 largest, then "(other groups)").
   */
  all: {
    duplicates: number;
    mean_dlc: number | null;
    mean_loss0: number | null;
    tokens: number;
    group_shares: Record<string, number> | null;
  };
  select: { split: number; seed: number; stratify: string | null; nested: boolean; unscored: string; exclude: string[] };
}

/** One kept file: a selection at a ratio. Shares are of all input rows, and of the scored rows' response tokens. */
export interface OutputRow {
  run: string;
  /** The selection's label in this report ("flexrand", or "out/a: flexrand" across runs). */
  label: string;
  selection: string;
  strategy: string;
  by: string;
  ratio: number;
  file: string;
  rows_kept: number;
  rows_kept_share: number;
  tokens_kept: number;
  tokens_kept_share: number;
  drawn: { easy: number; hard: number } | null;
  truncated_kept: number;
  unscored: number;
  unscored_policy: string;
  kept_by_status: Record<string, number>;
  /** Scored rows select.exclude set aside before the draw (the same for every file of a run). */
  rows_excluded: number;
  /** Kept scored rows flagged outlier, and duplicate. */
  outliers_kept: number;
  duplicates_kept: number;
  /** Share of each group (data.fields.group; the columns of runs[].all.group_shares) among the kept scored rows; null without groups. */
  group_shares: Record<string, number> | null;
  mean_dlc_kept: number | null;
  mean_loss0_kept: number | null;
  /** Jaccard of this file's kept rows with each other selection's of the same run at the same ratio, by selection. */
  overlap: Record<string, number>;
}

/** Kept-vs-all CDFs of one metric of one run, one panel per selection, one line per ratio. */
export interface Distribution {
  run: string;
  metric: "dlc" | "response_tokens";
  axis: Axis;
  /** Every scored row. */
  all: number[];
  panels: {
    label: string;
    /** The selection's name in its run ("flexrand", "hard-by-ifd"): compare overlays the runs' panels of one name. */
    selection: string;
    by: string;
    strategy: string;
    boundary: number | null;
    series: { ratio: number; rows: number; cdf: number[] }[];
  }[];
}

export interface Example {
  row: number;
  /** A duplicate: the first row with its response. */
  duplicate_of?: number;
  id: string | null;
  dlc: number;
  /** score.refine: the sd of an estimated DLC; null where DLC is exact. */
  dlc_sd: number | null;
  prompt: string;
  response: string;
}

export interface Report {
  tool: string;
  version: string;
  /** Said above everything: the demo's model has random weights. */
  banner: string | null;
  /** Said at the top, one line each: many rows truncated, rows without a score, duplicates, outliers. */
  warnings: string[];
  /** Under the decision table: what the numbers suggest choosing or changing, one sentence each. */
  guidance: string[];
  data: { path: string; sha256: string; rows: number };
  runs: RunSummary[];
  outputs: OutputRow[];
  distributions: Distribution[];
  /** data.fields.group: rows per group of every scored row and of each kept file's scored rows. */
  groups: { run: string; field: string; bars: { bar: string; group: string; rows: number }[] }[];
  /**
   * Jaccard of the kept rows of every two files at the same ratio, with the rows only one of them keeps; the
   * runs they come from, and whether they are the same selection (across runs: "A vs B").
   */
  overlaps: {
    ratio: number;
    a: string;
    b: string;
    a_run: string;
    b_run: string;
    same_selection: boolean;
    jaccard: number;
    intersection: number;
    union: number;
    only_a: number;
    only_b: number;
  }[];
  /** Spearman's ρ between the scores (dlc, loss0, ifd) of each run, and between one score of two runs, over the rows both define. */
  correlations: { a: string; b: string; rho: number | null; rows: number }[];
  /** loss0 against DLC per run (at most SCATTER_POINTS rows, evenly spaced). */
  scatter: { run: string; points: { row: number; loss0: number; dlc: number }[] }[];
  /** The 5 easiest and 5 hardest rows by DLC per run and group, their text cut to a line. */
  examples: { run: string; group: string; easiest: Example[]; hardest: Example[] }[];
  /** Per run, the first outliers (by DLC, highest first) and duplicates (in row order) the scores file flags. */
  flagged: { run: string; outliers: Example[]; duplicates: Example[] }[];
}
