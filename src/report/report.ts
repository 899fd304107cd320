// The report stage: report.json (every number the page shows) and a self-contained report.html (src/report/html)
// comparing what each selection (strategy x score) keeps at each keep ratio, for one run's output folder or,
// with `dlc-prune compare`, across the folders of several runs over the same data. Inputs in, files' text out:
// the executor reads the texts of the rows `exampleRows` names, and publishes the files.
import { REPORT_HTML, REPORT_JSON } from "../contract/manifest.js";
import { hasScore, scoredRows, unscoredCounts } from "../contract/status.js";
import { describeRule } from "../select/exclude.js";
import { countBy, describeCounts } from "../util/counts.js";
import { clippedAxis, cdfAt, evenSample, extremes, jaccard, oneLine, spearman } from "./figures.js";
import { renderHtml } from "./html.js";
import type { Distribution, Example, ExampleText, OutputRow, Report, ReportSource, RunSummary } from "./types.js";

export type { ExampleText, Report, ReportSource } from "./types.js";

export const SCATTER_POINTS = 2000;
export const EXAMPLES = 5;
const TEXT_CHARS = 110;

/** A selection's label in the report: prefixed by its run's label across runs. */
type Labels = (src: ReportSource) => (sel: string) => string;

/** The mean of `values` over `rows`; null for none. */
const meanOver = (rows: number[], values: Float64Array) => (rows.length ? rows.reduce((a, r) => a + values[r]!, 0) / rows.length : null);

const groupOf = (groups: (string | null)[], r: number) => groups[r] ?? "(none)";

/** The groups the decision table has a column for: the MIX_GROUPS - 1 largest among all scored rows, then OTHER_GROUPS. */
const MIX_GROUPS = 6;
const OTHER_GROUPS = "(other groups)";

function mixGroups(scored: number[], groups: (string | null)[]): string[] {
  const counts = countBy(scored.map((r) => groupOf(groups, r)));
  const byShare = Object.keys(counts).sort((a, b) => counts[b]! - counts[a]! || (a < b ? -1 : 1));
  return byShare.length <= MIX_GROUPS ? byShare : [...byShare.slice(0, MIX_GROUPS - 1), OTHER_GROUPS];
}

/** The share of each of `columns` (mixGroups) among `rows`; null without groups. */
function groupShares(rows: number[], groups: (string | null)[] | null, columns: string[]): Record<string, number> | null {
  if (!groups) return null;
  const named = new Set(columns);
  const counts = countBy(rows.map((r) => (named.has(groupOf(groups, r)) ? groupOf(groups, r) : OTHER_GROUPS)));
  return Object.fromEntries(columns.map((g) => [g, (counts[g] ?? 0) / Math.max(rows.length, 1)]));
}

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
    flags: body.flags,
    group: body.config.data.fields.group,
    excluded: body.excluded && { rows: body.excluded.rows, by_reason: body.excluded.by_reason, by_status: body.excluded.by_status },
    all: {
      mean_dlc: meanOver(scored, cols.dlc),
      mean_loss0: meanOver(scored, cols.loss0),
      tokens: scored.reduce((a, r) => a + cols.tokens[r]!, 0),
      group_shares: groupShares(scored, src.group, mixGroups(scored, src.group ?? [])),
      duplicates: scored.filter((r) => hasScore(cols.duplicateOf[r]!)).length,
    },
    select: { split, seed, stratify, nested, unscored, exclude: body.config.select.exclude.map(describeRule) },
  };
}

function outputRows(src: ReportSource, label: (sel: string) => string, scored: number[]): OutputRow[] {
  const { cols } = src.scores;
  const mix = mixGroups(scored, src.group ?? []);
  return src.selections.flatMap((sel) =>
    sel.ratios.map((r) => {
      const o = src.body.outputs.find((out) => out.selection === sel.choice.name && out.ratio === r.ratio)!;
      const kept = scored.filter((row) => r.keep[row]);
      const tokens = o.response_tokens.kept + o.response_tokens.pruned + o.response_tokens.excluded;
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
        rows_excluded: o.rows.excluded,
        outliers_kept: kept.filter((row) => cols.outlier?.[row] === 1).length,
        duplicates_kept: kept.filter((row) => hasScore(cols.duplicateOf[row]!)).length,
        group_shares: groupShares(kept, src.group, mix),
        mean_dlc_kept: meanOver(kept, cols.dlc),
        mean_loss0_kept: meanOver(kept, cols.loss0),
        overlap: {},
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
      selection: sel.choice.name,
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
    const counts = countBy(rows.map((r) => groupOf(groups, r)));
    for (const group of Object.keys(counts).sort()) bars.push({ bar, group, rows: counts[group]! });
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

/** Spearman's rho between the scores of a run, and between the same score of two runs (other pairs mean little). */
function correlations(sources: ReportSource[]): Report["correlations"] {
  const many = sources.length > 1;
  const scoresOf = sources.flatMap((s) => {
    const name = (score: string) => (many ? `${s.label}: ${score}` : score);
    const { cols } = s.scores;
    return [
      { run: s.label, score: "dlc", name: name("dlc"), values: cols.dlc },
      { run: s.label, score: "loss0", name: name("loss0"), values: cols.loss0 },
      ...(cols.ifd ? [{ run: s.label, score: "ifd", name: name("ifd"), values: cols.ifd }] : []),
    ];
  });
  const out: Report["correlations"] = [];
  scoresOf.forEach((a, i) =>
    scoresOf
      .slice(i + 1)
      .forEach((b) => (a.run === b.run || a.score === b.score) && out.push({ a: a.name, b: b.name, ...spearman(a.values, b.values) })),
  );
  return out;
}

/** The EXAMPLES easiest and hardest scored rows by DLC, per run and group. */
export interface ExamplePick {
  src: ReportSource;
  group: string;
  lowest: number[];
  highest: number[];
}

/** The first EXAMPLES outliers (highest DLC first) and duplicates (in row order) of a run. */
export interface FlaggedPick {
  src: ReportSource;
  outliers: number[];
  duplicates: number[];
}

/** The rows whose prompt and response the report shows: the executor reads their texts for `buildReport`. */
export function pickExamples(sources: ReportSource[]): { extremes: ExamplePick[]; flagged: FlaggedPick[] } {
  const flagged = sources.map((src) => {
    const { cols } = src.scores;
    const outliers = scoredRows(cols.dlc).filter((r) => cols.outlier?.[r] === 1);
    const duplicates = scoredRows(cols.dlc).filter((r) => hasScore(cols.duplicateOf[r]!));
    return {
      src,
      outliers: extremes(outliers, cols.dlc, EXAMPLES).highest,
      duplicates: duplicates.slice(0, EXAMPLES),
    };
  });
  return { extremes: pickExtremes(sources), flagged };
}

/** Every row the picks name, and the first rows the duplicates repeat. */
export function exampleRows({ extremes, flagged }: ReturnType<typeof pickExamples>): Set<number> {
  return new Set([...extremes.flatMap((p) => [...p.lowest, ...p.highest]), ...flagged.flatMap((f) => [...f.outliers, ...f.duplicates])]);
}

function pickExtremes(sources: ReportSource[]): ExamplePick[] {
  return sources.flatMap((s) => {
    const scored = scoredRows(s.scores.cols.dlc);
    const groups = s.group;
    const keys = groups ? [...new Set(scored.map((r) => groupOf(groups, r)))].sort() : ["all"];
    return keys.map((group) => {
      const rows = groups ? scored.filter((r) => groupOf(groups, r) === group) : scored;
      return { src: s, group, ...extremes(rows, s.scores.cols.dlc, EXAMPLES) };
    });
  });
}

/** The picked example rows and their texts, read by the executor. */
export interface Examples {
  picks: ReturnType<typeof pickExamples>;
  texts: Map<number, ExampleText>;
}

function examples({ picks, texts }: Examples): Pick<Report, "examples" | "flagged"> {
  const example = (src: ReportSource, row: number): Example => {
    const text = texts.get(row);
    const { cols } = src.scores;
    const estimated = cols.dlcExact?.[row] === 0;
    const of = cols.duplicateOf[row]!;
    return {
      row,
      ...(hasScore(of) && { duplicate_of: of }),
      id: cols.id?.[row] ?? null,
      dlc: cols.dlc[row]!,
      dlc_sd: estimated ? cols.dlcSd![row]! : null,
      prompt: text ? oneLine(text.prompt, TEXT_CHARS) : "",
      response: text ? oneLine(text.response, TEXT_CHARS) : "",
    };
  };
  return {
    examples: picks.extremes.map((p) => ({
      run: p.src.label,
      group: p.group,
      easiest: p.lowest.map((r) => example(p.src, r)),
      hardest: p.highest.map((r) => example(p.src, r)),
    })),
    flagged: picks.flagged.map((f) => ({
      run: f.src.label,
      outliers: f.outliers.map((r) => example(f.src, r)),
      duplicates: f.duplicates.map((r) => example(f.src, r)),
    })),
  };
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

/** What a reader should know before the figures, per run: many rows truncated, rows without a score, duplicates, outliers. */
function warnings(runs: RunSummary[], many: boolean): string[] {
  return runs.flatMap((r) => {
    const who = many ? `${r.label}: ` : "";
    const out: string[] = [];
    const { duplicates, duplicate_pairs, outliers, outlier_k } = r.flags;
    const excluded = (rule: string) =>
      r.select.exclude.includes(rule) ? "select.exclude drops them" : `select.exclude: [${rule}] drops them`;
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
    if (duplicates)
      out.push(
        `${who}${duplicates} of ${r.rows} rows (${pct(duplicates / r.rows)}) repeat an earlier row's response (${duplicate_pairs} with its prompt too): flagged duplicate in the scores file; ${excluded("duplicates")}`,
      );
    if (outliers)
      out.push(
        `${who}${outliers} of ${r.scored} scored rows (${pct(outliers / r.scored)}) are outliers (DLC or loss0 more than ${outlier_k} robust sd from the median): often junk; ${excluded("outliers")}`,
      );
    return out;
  });
}

/** The largest change of a group's share between all scored rows and a file's kept rows, with the group. */
function largestShift(o: OutputRow, all: Record<string, number>): { group: string; from: number; to: number } {
  const groups = [...new Set([...Object.keys(all), ...Object.keys(o.group_shares!)])].sort();
  const shifts = groups.map((group) => ({ group, from: all[group] ?? 0, to: o.group_shares![group] ?? 0 }));
  return shifts.reduce((a, b) => (Math.abs(b.to - b.from) > Math.abs(a.to - a.from) ? b : a));
}

/**
 * One sentence each, from the numbers: flagged rows a file keeps, the selection that keeps the groups' mix
 * and the one that shifts it most, and DLC ranking the rows as loss0 (the unmasked model's loss) does, so
 * that the masked levels cost without telling.
 */
function guidance(runs: RunSummary[], outputs: OutputRow[], correlations: Report["correlations"], many: boolean): string[] {
  return runs.flatMap((r) => {
    const who = many ? `${r.label}: ` : "";
    const mine = outputs.filter((o) => o.run === r.label);
    const out: string[] = [];
    // Flagged rows kept by a rule select.exclude does not apply (with it, the one row of a response that stays is a duplicate too).
    const kinds = [
      { rule: "outliers", kept: (o: OutputRow) => o.outliers_kept, of: r.flags.outliers },
      { rule: "duplicates", kept: (o: OutputRow) => o.duplicates_kept, of: r.all.duplicates },
    ].filter((k) => !r.select.exclude.includes(k.rule));
    const flagged = (o: OutputRow) => kinds.reduce((a, k) => a + k.kept(o), 0);
    const flaggedMost = mine.reduce((a, b) => (flagged(b) > flagged(a) ? b : a));
    if (flagged(flaggedMost))
      out.push(
        `${who}${flaggedMost.selection} ${flaggedMost.ratio} keeps ${kinds.map((k) => `${k.kept(flaggedMost)} of the ${k.of} scored ${k.rule}`).join(" and ")}; select.exclude: [${kinds.map((k) => k.rule).join(", ")}] sets them aside before every draw (excluded.parquet lists them with the reason).`,
      );
    if (r.excluded)
      out.push(
        `${who}select.exclude set ${r.excluded.rows} rows aside before the draws (${describeCounts(r.excluded.by_reason)}): the keep ratios are of the ${r.scored - r.excluded.rows} scored rows left, and the group shares above count every scored row.`,
      );
    const all = r.all.group_shares;
    const smallest = Math.min(...mine.map((o) => o.ratio));
    const atSmallest = mine.filter((o) => o.ratio === smallest && o.ratio < 1);
    if (all && atSmallest.length > 1) {
      const shifts = atSmallest
        .map((o) => ({ o, shift: largestShift(o, all) }))
        .sort((a, b) => Math.abs(a.shift.to - a.shift.from) - Math.abs(b.shift.to - b.shift.from));
      const [closest, farthest] = [shifts[0]!, shifts[shifts.length - 1]!];
      const points = (s: { from: number; to: number }) => `${Math.round(100 * Math.abs(s.to - s.from))} points`;
      if (points(closest.shift) !== points(farthest.shift))
        out.push(
          `${who}At keep ${smallest}, ${closest.o.selection} keeps the mix of ${r.group} closest to the data (largest change ${points(closest.shift)}); ${farthest.o.selection} changes it most (${farthest.shift.group} ${pct(farthest.shift.from)} of all scored rows, ${pct(farthest.shift.to)} kept).`,
        );
    }
    const rho = correlations.find((c) => c.a === `${who}dlc` && c.b === `${who}loss0`)?.rho;
    if (r.masking.levels > 1 && rho != null && rho >= ALIKE_RHO)
      out.push(
        `${who}DLC and loss0 rank these rows alike (Spearman ρ ${rho.toFixed(3)}): the masked levels add cost but little information here; consider score.levels: 1 (loss0 alone) or select.by: loss0.`,
      );
    return out;
  });
}

/** Each file's Jaccard with the other selections of its run at its ratio. */
function withOverlaps(outputs: OutputRow[], overlaps: Report["overlaps"]): OutputRow[] {
  return outputs.map((o) => {
    const pairs = overlaps.filter(
      (p) => p.ratio === o.ratio && p.a_run === o.run && p.b_run === o.run && (p.a === o.label || p.b === o.label),
    );
    const other = (p: Report["overlaps"][number]) => outputs.find((x) => x.run === o.run && x.label === (p.a === o.label ? p.b : p.a))!;
    return { ...o, overlap: Object.fromEntries(pairs.map((p) => [other(p).selection, p.jaccard])) };
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
  const overlapList = overlaps(sources, labelOf);
  const outputs = withOverlaps(
    sources.flatMap((s) => outputRows(s, labelOf(s), scoredOf.get(s)!)),
    overlapList,
  );
  return {
    tool: first.tool,
    version: first.version,
    banner: random.length
      ? `The model (${random.map((r) => r.model).join(", ")}) is the demo's tiny model with random weights (model.tiny): its scores are meaningless. This report shows the pipeline, not what DLC finds.`
      : null,
    warnings: warnings(runs, many),
    guidance: guidance(runs, outputs, rhos, many),
    data: { path: first.config.data.path, sha256: first.run.data.sha256, rows: first.rows.total },
    runs,
    outputs,
    distributions: sources.flatMap((s) =>
      (["dlc", "response_tokens"] as const).map((m) => distribution(s, m, labelOf(s), scoredOf.get(s)!)),
    ),
    groups: sources.flatMap((s) => groupBars(s, labelOf(s), scoredOf.get(s)!) ?? []),
    overlaps: overlapList,
    correlations: rhos,
    scatter: sources.map((s) => scatter(s, scoredOf.get(s)!)),
    ...examples(shown),
  };
}

/** report.json and report.html: file name -> text. */
export async function renderReportFiles(report: Report): Promise<Map<string, string>> {
  return new Map([
    [REPORT_JSON, JSON.stringify(report, null, 2) + "\n"],
    [REPORT_HTML, await renderHtml(report)],
  ]);
}
