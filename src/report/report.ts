// The report stage: report.json (every number the page shows) and a self-contained report.html (src/report/html)
// comparing what each selection (strategy x score) keeps at each keep ratio, for one run's output folder or,
// with `dlc-prune compare`, across the folders of several runs over the same data. Inputs in, files' text out:
// the executor reads the texts of the rows `exampleRows` names, and publishes the files.
import { REPORT_HTML, REPORT_JSON } from "../contract/manifest.js";
import { hasScore, scoredRows, unscoredCounts } from "../contract/status.js";
import { describeCounts } from "../util/counts.js";
import { clippedAxis, cdfAt, evenSample, extremes, jaccard, oneLine, spearman } from "./figures.js";
import { renderHtml } from "./html.js";
import type { Distribution, Example, ExampleText, OutputRow, Report, ReportSource, RunSummary } from "./types.js";

export type { ExampleText, Report, ReportSource } from "./types.js";

export const SCATTER_POINTS = 2000;
export const EXAMPLES = 5;
const TEXT_CHARS = 110;

/** A selection's label in the report: prefixed by its run's label across runs. */
type Labels = (src: ReportSource) => (sel: string) => string;

function runSummary(src: ReportSource, scored: number[]): RunSummary {
  const { body, scores } = src;
  const { cols } = scores;
  const K = body.run.masking.levels;
  // The path over the rows that ran every level: with score.refine, estimated rows have no loss past level 0.
  const path = cols.dlcExact ? scored.filter((r) => cols.dlcExact![r] === 1) : scored;
  const meanLoss = Array.from({ length: K }, (_, k) => path.reduce((a, r) => a + cols.losses[r * K + k]!, 0) / Math.max(path.length, 1));
  const { split, seed, stratify, nested, unscored } = body.config.select;
  const m = body.run.masking;
  return {
    label: src.label,
    model: body.run.model.path,
    random_model: !!body.config.model.tiny,
    rows: body.rows.total,
    scored: scored.length,
    by_status: body.rows.by_status,
    masking: {
      levels: K,
      method: m.method,
      scope: m.scope,
      interval: m.interval,
      sparsities: m.sparsities,
      mean_loss: meanLoss,
      mean_loss_rows: path.length,
    },
    ifd: cols.ifd !== null,
    refine: body.refine,
    select: { split, seed, stratify, nested, unscored },
  };
}

function outputRows(src: ReportSource, label: (sel: string) => string, scored: number[]): OutputRow[] {
  const { cols } = src.scores;
  return src.selections.flatMap((sel) =>
    sel.ratios.map((r) => {
      const o = src.body.outputs.find((out) => out.selection === sel.choice.name && out.ratio === r.ratio)!;
      const kept = scored.filter((row) => r.keep[row]);
      const tokens = o.response_tokens.kept + o.response_tokens.pruned;
      return {
        run: src.label,
        label: label(sel.choice.name),
        selection: sel.choice.name,
        strategy: sel.choice.strategy,
        by: sel.choice.by,
        ratio: r.ratio,
        file: o.file,
        rows_kept: o.rows.kept,
        rows_kept_share: o.rows.kept / Math.max(src.body.rows.total, 1),
        tokens_kept: o.response_tokens.kept,
        tokens_kept_share: o.response_tokens.kept / Math.max(tokens, 1),
        drawn: o.drawn,
        truncated_kept: o.kept_by_status.truncated ?? 0,
        unscored: o.rows.unscored,
        unscored_policy: src.body.unscored.policy,
        kept_by_status: o.kept_by_status,
        mean_dlc_kept: kept.length ? kept.reduce((a, row) => a + cols.dlc[row]!, 0) / kept.length : null,
      };
    }),
  );
}

function distribution(src: ReportSource, metric: Distribution["metric"], label: (sel: string) => string, scored: number[]): Distribution {
  const { cols } = src.scores;
  const value = (row: number) => (metric === "dlc" ? cols.dlc[row]! : cols.tokens[row]!);
  const all = scored.map(value);
  const axis = clippedAxis(all);
  return {
    run: src.label,
    metric,
    axis,
    all: cdfAt(all, axis.x),
    panels: src.selections.map((sel) => ({
      label: label(sel.choice.name),
      by: sel.choice.by,
      strategy: sel.choice.strategy,
      // FlexRand's easy/hard boundary is in the units of the score it ranks by.
      boundary: metric === "dlc" && sel.choice.by === "dlc" ? sel.splitScore : null,
      series: sel.ratios.map((r) => {
        const kept = scored.filter((row) => r.keep[row]).map(value);
        return { ratio: r.ratio, rows: kept.length, cdf: cdfAt(kept, axis.x) };
      }),
    })),
  };
}

function groupBars(src: ReportSource, label: (sel: string) => string, scored: number[]): Report["groups"][number] | null {
  const field = src.body.config.data.fields.group;
  const groups = src.group;
  if (!field || !groups) return null;
  const bars: Report["groups"][number]["bars"] = [];
  const count = (bar: string, rows: number[]) => {
    const counts = new Map<string, number>();
    for (const r of rows) counts.set(groups[r] ?? "(none)", (counts.get(groups[r] ?? "(none)") ?? 0) + 1);
    for (const [group, n] of [...counts].sort(([a], [b]) => (a < b ? -1 : 1))) bars.push({ bar, group, rows: n });
  };
  count("all scored", scored);
  for (const sel of src.selections)
    for (const r of sel.ratios)
      count(
        `${label(sel.choice.name)} ${r.ratio}`,
        scored.filter((row) => r.keep[row]),
      );
  return { run: src.label, field, bars };
}

/** Jaccard of the kept rows of every two files at the same ratio. */
function overlaps(sources: ReportSource[], labelOf: Labels): Report["overlaps"] {
  const keeps = sources.flatMap((s) =>
    s.selections.flatMap((sel) =>
      sel.ratios.map((r) => ({
        label: labelOf(s)(sel.choice.name),
        run: s.label,
        selection: sel.choice.name,
        ratio: r.ratio,
        keep: r.keep,
      })),
    ),
  );
  const out: Report["overlaps"] = [];
  keeps.forEach((a, i) =>
    keeps.slice(i + 1).forEach(
      (b) =>
        a.ratio === b.ratio &&
        out.push({
          ratio: a.ratio,
          a: a.label,
          b: b.label,
          a_run: a.run,
          b_run: b.run,
          same_selection: a.selection === b.selection,
          ...jaccard(a.keep, b.keep),
        }),
    ),
  );
  return out;
}

/** Spearman's rho between every two scores of every run. */
function correlations(sources: ReportSource[]): Report["correlations"] {
  const many = sources.length > 1;
  const scoresOf = sources.flatMap((s) => {
    const name = (score: string) => (many ? `${s.label}: ${score}` : score);
    const { cols } = s.scores;
    return [
      { name: name("dlc"), values: cols.dlc },
      { name: name("loss0"), values: cols.loss0 },
      ...(cols.ifd ? [{ name: name("ifd"), values: cols.ifd }] : []),
    ];
  });
  const out: Report["correlations"] = [];
  scoresOf.forEach((a, i) => scoresOf.slice(i + 1).forEach((b) => out.push({ a: a.name, b: b.name, ...spearman(a.values, b.values) })));
  return out;
}

/** The EXAMPLES easiest and hardest scored rows by DLC per run and group. */
/** The easiest and hardest rows the report shows, per run and group. */
export interface ExamplePick {
  src: ReportSource;
  group: string;
  lowest: number[];
  highest: number[];
}

/** The rows whose prompt and response the report shows: the executor reads their texts for `buildReport`. */
export function pickExamples(sources: ReportSource[]): ExamplePick[] {
  return sources.flatMap((s) => {
    const scored = scoredRows(s.scores.cols.dlc);
    const groups = s.group;
    const keys = groups ? [...new Set(scored.map((r) => groups[r] ?? "(none)"))].sort() : ["all"];
    return keys.map((group) => {
      const rows = groups ? scored.filter((r) => (groups[r] ?? "(none)") === group) : scored;
      return { src: s, group, ...extremes(rows, s.scores.cols.dlc, EXAMPLES) };
    });
  });
}

/** The picked example rows and their texts, read by the executor. */
export interface Examples {
  picks: ExamplePick[];
  texts: Map<number, ExampleText>;
}

function examples({ picks, texts }: Examples): Report["examples"] {
  const example = (src: ReportSource, row: number): Example => {
    const text = texts.get(row);
    const { cols } = src.scores;
    const estimated = cols.dlcExact?.[row] === 0;
    return {
      row,
      id: cols.id?.[row] ?? null,
      dlc: cols.dlc[row]!,
      dlc_sd: estimated ? cols.dlcSd![row]! : null,
      prompt: text ? oneLine(text.prompt, TEXT_CHARS) : "",
      response: text ? oneLine(text.response, TEXT_CHARS) : "",
    };
  };
  return picks.map((p) => ({
    run: p.src.label,
    group: p.group,
    easiest: p.lowest.map((r) => example(p.src, r)),
    hardest: p.highest.map((r) => example(p.src, r)),
  }));
}

/** loss0 against DLC, at most SCATTER_POINTS rows per run. */
function scatter(src: ReportSource, scored: number[]): Report["scatter"][number] {
  const { loss0, dlc } = src.scores.cols;
  return {
    run: src.label,
    points: evenSample(scored, SCATTER_POINTS)
      .filter((row) => hasScore(loss0[row]!))
      .map((row) => ({ row, loss0: loss0[row]!, dlc: dlc[row]! })),
  };
}

/** A share of scored rows above which truncation is said at the top of the report. */
const TRUNCATED_WARN = 0.05;
/** Spearman's ρ(DLC, loss0) above which the masked levels are said to add little. */
const ALIKE_RHO = 0.99;

/**
 * What a reader should know before the figures, per run: many rows truncated, rows without a score, and DLC
 * ranking the rows as loss0 (the unmasked model's loss) does, so that the masked levels cost without telling.
 */
function warnings(runs: RunSummary[], correlations: Report["correlations"], many: boolean): string[] {
  return runs.flatMap((r) => {
    const who = many ? `${r.label}: ` : "";
    const out: string[] = [];
    const truncated = r.by_status.truncated ?? 0;
    if (r.scored && truncated / r.scored > TRUNCATED_WARN)
      out.push(
        `${who}${truncated} of ${r.scored} scored rows (${pct(truncated / r.scored)}) were truncated: only the response tokens within score.max_tokens were scored; raise score.max_tokens if the model's window allows`,
      );
    const unscored = r.rows - r.scored;
    if (unscored)
      out.push(
        `${who}${unscored} of ${r.rows} rows (${pct(unscored / r.rows)}) have no score (${describeCounts(unscoredCounts(r.by_status))}): they are listed in unscored.jsonl`,
      );
    const rho = correlations.find((c) => c.a === `${who}dlc` && c.b === `${who}loss0`)?.rho;
    if (r.masking.levels > 1 && rho != null && rho >= ALIKE_RHO)
      out.push(
        `${who}DLC and loss0 rank these rows alike (Spearman ρ ${rho.toFixed(3)}): the masked levels add cost but little information here; consider score.levels: 1 (loss0 alone) or select.by: loss0`,
      );
    return out;
  });
}

const pct = (x: number) => `${(100 * x).toFixed(x < 0.1 ? 1 : 0)}%`;

/**
 * The report of one or more runs over the same data (the caller checks every source scored it), with the
 * example rows `pickExamples` chose and their texts (a row missing from `texts` shows none).
 */
export function buildReport(sources: ReportSource[], shown: Examples): Report {
  const many = sources.length > 1;
  const labelOf: Labels = (src) => (sel) => (many ? `${src.label}: ${sel}` : sel);
  const scoredOf = new Map(sources.map((s) => [s, scoredRows(s.scores.cols.dlc)]));
  const runs = sources.map((s) => runSummary(s, scoredOf.get(s)!));
  const random = runs.filter((r) => r.random_model);
  const first = sources[0]!.body;
  const rhos = correlations(sources);
  return {
    tool: first.tool,
    version: first.version,
    banner: random.length
      ? `The model (${random.map((r) => r.model).join(", ")}) is the demo's tiny model with random weights (model.tiny): its scores are meaningless. This report shows the pipeline, not what DLC finds.`
      : null,
    warnings: warnings(runs, rhos, many),
    data: { path: first.config.data.path, sha256: first.run.data.sha256, rows: first.rows.total },
    runs,
    outputs: sources.flatMap((s) => outputRows(s, labelOf(s), scoredOf.get(s)!)),
    distributions: sources.flatMap((s) =>
      (["dlc", "response_tokens"] as const).map((m) => distribution(s, m, labelOf(s), scoredOf.get(s)!)),
    ),
    groups: sources.flatMap((s) => groupBars(s, labelOf(s), scoredOf.get(s)!) ?? []),
    overlaps: overlaps(sources, labelOf),
    correlations: rhos,
    scatter: sources.map((s) => scatter(s, scoredOf.get(s)!)),
    examples: examples(shown),
  };
}

/** report.json and report.html: file name -> text. */
export async function renderReportFiles(report: Report): Promise<Map<string, string>> {
  return new Map([
    [REPORT_JSON, JSON.stringify(report, null, 2) + "\n"],
    [REPORT_HTML, await renderHtml(report)],
  ]);
}
