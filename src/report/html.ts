// report.html: the report's figures as static SVG (Vega-Lite compiled and rendered in Node: no scripts, no
// network) and its tables. Everything drawn comes from report.json's numbers.
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { describeCounts } from "../util/counts.js";
import type { Distribution, Example, Report } from "./types.js";

const SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";
const CONFIG = { config: { font: "sans-serif", view: { stroke: null }, legend: { orient: "right" } } };
const WIDTH = 600;
const ALL = "all scored";
const GREY = "#9a9a9a";
const PALETTE = ["#2f6db5", "#e67e22", "#27ae60", "#8e44ad", "#c0392b", "#16a085", "#d35400", "#7f8c8d"];

const METRICS: Record<Distribution["metric"], { title: string; unit: string }> = {
  dlc: { title: "DLC", unit: "DLC (mean response NLL over the masking path, nats)" },
  response_tokens: { title: "Response tokens", unit: "response tokens scored" },
};

const pct = (share: number) => `${(100 * share).toFixed(1)}%`;
const fixed = (v: number | null, digits = 4) => (v === null ? "–" : v.toFixed(digits));
const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

/** What the clipped axis leaves out, said under the title. */
function clipNote(d: Distribution): string {
  const { below, above, lo, hi } = d.axis;
  const fmt = (v: number) => (d.metric === "dlc" ? v.toFixed(3) : String(v));
  return `x axis ${fmt(lo)} to ${fmt(hi)} (1st to 99th percentile of the scored rows): ${below} rows below it and ${above} above it not drawn`;
}

/**
 * One panel per selection: the CDF of every scored row (grey) and of the rows each ratio keeps (colours),
 * on one axis, so ratios and strategies compare as shapes whatever their sizes.
 */
/** A panel's selection, with its strategy and score where its name does not say them ("flexrand", "picked (hard, ranked by ifd)"). */
function panelTitle(p: Distribution["panels"][number]): string {
  const more = [
    ...(p.label.includes(p.strategy) ? [] : [p.strategy]),
    ...(p.by === "dlc" || p.label.includes(p.by) ? [] : [`ranked by ${p.by}`]),
  ];
  return more.length ? `${p.label} (${more.join(", ")})` : p.label;
}

function cdfSpec(d: Distribution): TopLevelSpec {
  const ratios = [...new Set(d.panels.flatMap((p) => p.series.map((s) => s.ratio)))].sort((a, b) => a - b);
  const domain = [ALL, ...ratios.map((r) => `keep ${r}`)];
  const color = { field: "rows", type: "nominal", title: "rows", scale: { domain, range: [GREY, ...PALETTE] } };
  const x = {
    field: "x",
    type: "quantitative",
    title: METRICS[d.metric].unit,
    scale: { domain: [d.axis.lo, d.axis.hi], zero: false, nice: false },
  };
  const y = { field: "cdf", type: "quantitative", title: "share of rows ≤ x", scale: { domain: [0, 1] }, axis: { format: "%" } };
  return {
    $schema: SCHEMA,
    title: {
      text: `${METRICS[d.metric].title}: kept rows vs all scored rows (cumulative share)${d.panels.length > 1 ? `, one panel per selection` : ""}`,
      subtitle: clipNote(d),
      anchor: "start",
    },
    vconcat: d.panels.map((p) => {
      const all = d.axis.x.map((xv, i) => ({ x: xv, cdf: d.all[i], rows: ALL }));
      const kept = d.axis.x.flatMap((xv, i) => p.series.map((s) => ({ x: xv, cdf: s.cdf[i], rows: `keep ${s.ratio}` })));
      // All rows first, wide and pale, so that it shows under kept lines that follow it.
      const line = (values: unknown[], style: object) => ({
        data: { values },
        mark: { type: "line", clip: true, interpolate: "step-after", ...style },
        encoding: { x, y, color },
      });
      const layer: unknown[] = [line(all, { strokeWidth: 5, opacity: 0.5 }), line(kept, { strokeWidth: 1.5 })];
      if (p.boundary !== null)
        layer.push(
          {
            data: { values: [{ b: p.boundary }] },
            mark: { type: "rule", color: "#c0392b", strokeDash: [4, 3] },
            encoding: { x: { field: "b", type: "quantitative" } },
          },
          {
            data: { values: [{ b: p.boundary, t: "easy | hard (FlexRand's split)" }] },
            mark: { type: "text", align: "left", baseline: "top", dx: 4, dy: 2, color: "#c0392b", fontSize: 10 },
            encoding: { x: { field: "b", type: "quantitative" }, y: { datum: 1, type: "quantitative" }, text: { field: "t" } },
          },
        );
      return {
        title: { text: panelTitle(p), fontSize: 12, anchor: "start" },
        width: WIDTH + 100,
        height: 150,
        layer,
      };
    }),
    // A legend beside every panel, not one for the column.
    resolve: { legend: { color: "independent" } },
    ...CONFIG,
  } as TopLevelSpec;
}

/**
 * Across runs: one figure per metric, one panel per selection, the runs overlaid (a colour each, a dash per
 * keep ratio, every scored row as the run's wide pale line), so "A vs B" is read in one panel.
 */
function overlaySpec(ds: Distribution[]): TopLevelSpec {
  const metric = ds[0]!.metric;
  // Runs are keyed A, B, ... in the legend (folders are long); the caption names them.
  const runs = ds.map((_, i) => runKey(i));
  const ratios = [...new Set(ds.flatMap((d) => d.panels.flatMap((p) => p.series.map((s) => s.ratio))))].sort((a, b) => a - b);
  const selections = [...new Set(ds.flatMap((d) => d.panels.map((p) => p.selection)))];
  const [lo, hi] = [Math.min(...ds.map((d) => d.axis.lo)), Math.max(...ds.map((d) => d.axis.hi))];
  const x = { field: "x", type: "quantitative", title: METRICS[metric].unit, scale: { domain: [lo, hi], zero: false, nice: false } };
  const y = { field: "cdf", type: "quantitative", title: "share of rows ≤ x", scale: { domain: [0, 1] }, axis: { format: "%" } };
  const color = { field: "run", type: "nominal", title: "run", scale: { domain: runs, range: PALETTE } };
  const dashes = [
    [1, 0],
    [6, 3],
    [2, 2],
    [8, 3, 2, 3],
    [1, 3],
  ];
  const strokeDash = {
    field: "rows",
    type: "nominal",
    title: "rows",
    scale: { domain: [ALL, ...ratios.map((r) => `keep ${r}`)], range: [[1, 0], ...ratios.map((_, i) => dashes[i % dashes.length])] },
  };
  const line = (values: unknown[], style: object) => ({
    data: { values },
    mark: { type: "line", clip: true, interpolate: "step-after", ...style },
    encoding: { x, y, color, strokeDash },
  });
  return {
    $schema: SCHEMA,
    title: {
      text: `${METRICS[metric].title}: kept rows vs all scored rows (cumulative share), the runs overlaid, one panel per selection`,
      anchor: "start",
    },
    vconcat: selections.map((sel) => {
      const all = ds.flatMap((d, r) => d.axis.x.map((xv, i) => ({ x: xv, cdf: d.all[i], run: runKey(r), rows: ALL })));
      const kept = ds.flatMap((d, r) => {
        const p = d.panels.find((q) => q.selection === sel);
        return p
          ? d.axis.x.flatMap((xv, i) => p.series.map((s) => ({ x: xv, cdf: s.cdf[i], run: runKey(r), rows: `keep ${s.ratio}` })))
          : [];
      });
      return {
        title: { text: sel, fontSize: 12, anchor: "start" },
        width: WIDTH + 100,
        height: 115,
        layer: [line(all, { strokeWidth: 5, opacity: 0.35 }), line(kept, { strokeWidth: 1.5 })],
      };
    }),
    resolve: { legend: { color: "independent", strokeDash: "independent" } },
    ...CONFIG,
  } as TopLevelSpec;
}

/** The legend's name of the r-th run in an overlay: A, B, ... */
const runKey = (r: number) => (r < 26 ? String.fromCharCode(65 + r) : `run ${r + 1}`);

/** Above each overlaid figure: which run each legend key is, and what its clipped axis leaves out. */
function overlayCaptions(report: Report): string[] {
  return (["dlc", "response_tokens"] as const).map((m) =>
    report.distributions
      .filter((d) => d.metric === m)
      .map((d, r) => `<b>${runKey(r)}</b> = ${escape(d.run)}; ${escape(clipNote(d))}`)
      .join("<br>"),
  );
}

/** One figure per run and metric; across runs, one per metric with the runs overlaid. */
function distributionSpecs(report: Report): TopLevelSpec[] {
  if (report.runs.length === 1) return report.distributions.map(cdfSpec);
  return (["dlc", "response_tokens"] as const).map((m) => overlaySpec(report.distributions.filter((d) => d.metric === m)));
}

/** The share of each group among every scored row and among each file's kept rows. */
function compositionSpec(g: Report["groups"][number], many: boolean): TopLevelSpec {
  return {
    $schema: SCHEMA,
    title: {
      text: `Mix by ${g.field}: all scored rows vs each kept file`,
    },
    data: { values: g.bars },
    mark: "bar",
    width: many ? 340 : WIDTH - 120,
    encoding: {
      y: { field: "bar", type: "nominal", sort: null, title: null },
      x: { field: "rows", type: "quantitative", stack: "normalize", title: "share of rows", axis: { format: "%" } },
      color: { field: "group", type: "nominal", title: g.field },
      tooltip: [{ field: "group" }, { field: "rows" }],
    },
    ...CONFIG,
  } as TopLevelSpec;
}

/** loss0 (perplexity filtering's score) against DLC: points on a line mean the masking path adds little. */
function scatterSpec(s: Report["scatter"][number], rho: number | null, many: boolean): TopLevelSpec {
  return {
    $schema: SCHEMA,
    title: {
      text: `loss0 vs DLC: Spearman ρ ${fixed(rho, 3)}`,
      subtitle: `${s.points.length} rows; loss0: the unmasked model's response NLL`,
    },
    data: { values: s.points },
    mark: { type: "circle", size: 22, opacity: 0.55, color: PALETTE[0] },
    width: many ? 320 : 380,
    height: many ? 320 : 380,
    encoding: {
      x: { field: "loss0", type: "quantitative", scale: { zero: false }, title: "loss0 (nats)" },
      y: { field: "dlc", type: "quantitative", scale: { zero: false }, title: "DLC (nats)" },
    },
    ...CONFIG,
  } as TopLevelSpec;
}

/** Mean response loss per masking level; the level's sparsity is part of its axis label. */
function maskingSpec(runs: Report["runs"]): TopLevelSpec {
  const values = runs.flatMap((r) =>
    r.masking.mean_loss.map((loss, level) => ({
      run: r.label,
      level: `${level} · ${(100 * r.masking.sparsities[level]!).toFixed(1)}%`,
      order: level,
      loss,
    })),
  );
  const levels = Math.max(...runs.map((r) => r.masking.levels));
  const m = runs[0]!.masking;
  return {
    $schema: SCHEMA,
    title: {
      text:
        runs.length > 1
          ? "Masking path: mean response loss per level"
          : `Masking path: mean response loss per level (${m.method}, ${m.scope} scope, interval ${m.interval})`,
      subtitle: runs.map((r) => `${runs.length > 1 ? `${r.label}: ` : ""}over the ${r.masking.mean_loss_rows} rows that ran every level`),
    },
    data: { values },
    mark: { type: "line", point: true },
    width: WIDTH - 120,
    height: 220,
    encoding: {
      x: {
        field: "level",
        type: "ordinal",
        sort: { field: "order" },
        title: "level · share of maskable weights zeroed",
        axis: { labelAngle: levels > 6 ? -35 : 0 },
      },
      y: { field: "loss", type: "quantitative", scale: { zero: false }, title: "mean NLL (nats)" },
      color: { field: "run", type: "nominal", title: "run", legend: runs.length > 1 ? {} : null },
    },
    ...CONFIG,
  } as TopLevelSpec;
}

async function svg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  const out = await view.toSVG();
  view.finalize();
  return out;
}

const table = (head: string[], rows: (string | number)[][], cls = "") =>
  `<table${cls ? ` class="${cls}"` : ""}>\n<tr>${head.map((h) => `<th>${h}</th>`).join("")}</tr>\n${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join("")}</tr>`).join("\n")}\n</table>`;

/**
 * The decision table of one run: all scored rows first, then each file, with what tells the selections apart:
 * rows and tokens kept, each group's share, flagged rows kept, overlap with the run's other selections, and
 * the kept rows' mean DLC and loss0 against all rows'.
 */
function decisionTable(report: Report, run: Report["runs"][number]): string {
  const outputs = report.outputs.filter((o) => o.run === run.label);
  const mix = Object.keys(run.all.group_shares ?? {});
  const mixCells = (shares: Record<string, number> | null) => mix.map((g) => pct(shares?.[g] ?? 0));
  const head = [
    "selection",
    "keep",
    "rows kept",
    "tokens kept",
    ...mix.map((g) => `${escape(g)}`),
    "outliers",
    "duplicates",
    "overlap (Jaccard)",
    "mean DLC",
    "mean loss0",
    "easy / hard",
    "truncated",
  ];
  const all = [
    "<b>all scored rows</b>",
    "",
    String(run.scored),
    String(run.all.tokens),
    ...mixCells(run.all.group_shares),
    String(run.flags.outliers),
    String(run.all.duplicates),
    "",
    fixed(run.all.mean_dlc, 3),
    fixed(run.all.mean_loss0, 3),
    "",
    String(run.by_status.truncated ?? 0),
  ];
  const rows = outputs.map((o) => [
    escape(o.selection),
    o.ratio,
    `${o.rows_kept} (${pct(o.rows_kept_share)})`,
    `${o.tokens_kept} (${pct(o.tokens_kept_share)})`,
    ...mixCells(o.group_shares),
    o.outliers_kept,
    o.duplicates_kept,
    Object.entries(o.overlap)
      .map(([sel, j]) => `${escape(sel)} ${j.toFixed(2).replace(/^0\./, ".")}`)
      .join(" · ") || "–",
    fixed(o.mean_dlc_kept, 3),
    fixed(o.mean_loss0_kept, 3),
    o.drawn ? `${o.drawn.easy} / ${o.drawn.hard}` : "–",
    o.truncated_kept,
  ]);
  const caption = report.runs.length > 1 ? `<h3>${escape(run.label)}</h3>\n` : "";
  const mixNote = mix.length ? `; the ${escape(run.group!)} columns: each group's share of the rows` : "";
  return `${caption}${table(head, [all, ...rows], "decision")}\n<p class="meta">Each file's scored rows: rows kept (share of all ${run.rows} input rows), response tokens kept (share of the scored rows')${mixNote}; outliers, duplicates and truncated rows among them; overlap with the other selections at the same ratio; easy / hard: FlexRand's draws from each interval; excluded before selection: ${run.excluded ? `${run.excluded.rows} rows (${escape(describeCounts(run.excluded.by_reason))}; ${escape(describeCounts(run.excluded.by_status))})` : "none (select.exclude)"}; unscored rows: ${escape(run.select.unscored)}.</p>`;
}

/** Per ratio, the Jaccard overlap of every two files' kept rows, as a matrix. */
/** Across runs: for each selection both runs made, at each ratio, whether they kept the same rows. */
function sameRowsTable(report: Report): string {
  const pairs = report.overlaps.filter((o) => o.same_selection && o.a_run !== o.b_run);
  if (!pairs.length) return "";
  return `<h2>Same kept rows? (run against run)</h2>\n${table(
    ["selection", "ratio", "A", "B", "same rows", "Jaccard", "only in A", "only in B"],
    pairs.map((o) => [
      escape(o.a.slice(o.a_run.length + 2)),
      o.ratio,
      escape(o.a_run),
      escape(o.b_run),
      o.only_a === 0 && o.only_b === 0 ? "yes" : "no",
      o.jaccard.toFixed(3),
      o.only_a,
      o.only_b,
    ]),
  )}`;
}

/** Per run and ratio, the Jaccard overlap of every two selections' kept rows, as a matrix (across runs: sameRowsTable). */
function overlapTables(report: Report): string {
  const many = report.runs.length > 1;
  const ratios = [...new Set(report.overlaps.map((o) => o.ratio))].sort((a, b) => a - b);
  return report.runs
    .flatMap((run) =>
      ratios.map((ratio) => {
        const pairs = report.overlaps.filter((o) => o.ratio === ratio && o.a_run === run.label && o.b_run === run.label);
        if (!pairs.length) return "";
        const names = [...new Set(pairs.flatMap((p) => [p.a, p.b]))];
        const short = (label: string) => escape(many ? label.slice(run.label.length + 2) : label);
        const at = (a: string, b: string) =>
          a === b ? "1" : (pairs.find((p) => (p.a === a && p.b === b) || (p.a === b && p.b === a))?.jaccard.toFixed(3) ?? "–");
        return `<div><h3>${many ? `${escape(run.label)}, ` : ""}keep ${ratio}</h3>\n${table(
          ["", ...names.map(short)],
          names.map((a) => [short(a), ...names.map((b) => at(a, b))]),
          "matrix",
        )}</div>`;
      }),
    )
    .join("\n");
}

/** Example rows under a title (on the first): what `shown` says of each, its id, and its prompt and response. */
const exampleLines = (title: string, list: Example[], shown: (e: Example) => string) =>
  list.map((e, i) => [
    i === 0 ? title : "",
    shown(e),
    escape(e.id ?? `row ${e.row}`),
    `<span class="text">${escape(e.prompt)}</span>`,
    `<span class="text">${escape(e.response)}</span>`,
  ]);

/** The first outliers and duplicates of each run, with their text. */
function flaggedTables(report: Report): string {
  const many = report.runs.length > 1;
  const rows = (title: string, list: Example[]) =>
    exampleLines(title, list, (e) => (e.duplicate_of === undefined ? e.dlc.toFixed(4) : `repeats row ${e.duplicate_of}`));
  return report.flagged
    .filter((f) => f.outliers.length || f.duplicates.length)
    .map(
      (f) =>
        `${many ? `<h3>${escape(f.run)}</h3>\n` : ""}${table(["", "DLC / first row", "id", "prompt", "response"], [...rows("outliers", f.outliers), ...rows("duplicates", f.duplicates)], "examples")}`,
    )
    .join("\n");
}

function examplesTables(report: Report): string {
  const many = report.runs.length > 1;
  const rows = (title: string, list: Example[]) =>
    exampleLines(title, list, (e) => (e.dlc_sd === null ? e.dlc.toFixed(4) : `≈ ${e.dlc.toFixed(4)} ± ${e.dlc_sd.toFixed(4)} (estimate)`));
  return report.examples
    .map(
      (g) =>
        `<h3>${many ? `${escape(g.run)}: ` : ""}${escape(g.group)}</h3>\n${table(["", "DLC", "id", "prompt", "response"], [...rows("easiest", g.easiest), ...rows("hardest", g.hardest)], "examples")}`,
    )
    .join("\n");
}

function runLine(r: Report["runs"][number]): string {
  const s = r.select;
  const m = r.masking;
  const refine = r.refine
    ? `; score.refine boundary: DLC exact for ${r.refine.exact} rows, estimated for ${r.refine.estimated} ` +
      `(expected side agreement ${(100 * r.refine.expected_agreement).toFixed(2)}% at ${escape(r.refine.boundaries.join(", "))})`
    : "";
  const parts = [
    `model ${escape(r.model)}`,
    `${r.rows} rows, ${r.scored} scored (${escape(describeCounts(r.by_status))})`,
    `${m.levels} levels, ${m.method} ${m.scope} masking, interval ${m.interval}${r.ifd ? "; IFD computed" : ""}${refine}`,
    `split ${s.split}, seed ${s.seed}${s.stratify ? `, stratified by ${escape(s.stratify)}` : ""}, ${s.nested ? "nested" : "independent"} draws`,
    `select.exclude: ${s.exclude.length ? escape(s.exclude.join(", ")) : "none"}`,
    `unscored rows: ${escape(s.unscored)}`,
  ];
  return `<p class="meta"><b>${r.label === "." ? "This run" : escape(r.label)}</b>: ${parts.join("; ")}</p>`;
}

/**
 * Vega numbers its clip paths and gradients with a counter global to the process: renumbered in order of
 * appearance, the page's bytes depend only on the report (a second report in the same process is identical).
 */
function renumberIds(html: string): string {
  const ids = new Map<string, number>();
  return html.replace(/(id="|url\(#)(clip|gradient)(\d+)/g, (_, lead: string, kind: string, n: string) => {
    const key = kind + n;
    if (!ids.has(key)) ids.set(key, ids.size + 1);
    return `${lead}${kind}${ids.get(key)}`;
  });
}

export async function renderHtml(report: Report): Promise<string> {
  return renumberIds(await page(report));
}

const STYLE = `body { font-family: sans-serif; margin: 1em auto; max-width: 1340px; padding: 0 1em; color: #222; }
h1 { margin: 0.2em 0 0.4em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
table.decision { margin: 0.4em 0; font-size: 0.85em; }
.guidance { background: #eef5ee; border: 1px solid #8fbf8f; padding: 0.5em 1em 0.5em 2em; margin: 0.4em 0; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; }
table.examples td:nth-child(n+4) { text-align: left; max-width: 330px; }
.text { display: block; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
figure { margin: 1.5em 0; }
figcaption { font-size: 0.8em; color: #555; margin-bottom: 0.3em; }
.row { display: flex; flex-wrap: wrap; gap: 0 2.5em; align-items: flex-start; }
.row h3 { margin: 0.6em 0 0; }
details > summary { cursor: pointer; color: #2f6db5; margin: 0.5em 0; }
.meta { color: #555; font-size: 0.9em; }
.banner { background: #fff3cd; border: 1px solid #e0b84c; padding: 0.8em 1em; font-weight: bold; }
.warnings { background: #fff8e6; border: 1px solid #e0b84c; padding: 0.4em 1em 0.4em 2em; margin: 0.4em 0; }
`;

async function page(report: Report): Promise<string> {
  const many = report.runs.length > 1;
  const rhoOf = (run: string) =>
    report.correlations.find((c) => c.a === (many ? `${run}: dlc` : "dlc") && c.b === (many ? `${run}: loss0` : "loss0"))?.rho ?? null;
  // Across runs, a figure's run (a folder, often long) is said in its caption, not in its title: the figure keeps its width.
  const figures = async (specs: TopLevelSpec[], captions?: string[]) =>
    (await Promise.all(specs.map(svg)))
      .map((c, i) => `<figure>${captions ? `<figcaption>${captions[i]}</figcaption>` : ""}${c}</figure>`)
      .join("\n");
  const runCaption = (run: string) => `<b>${escape(run)}</b>`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>dlc-prune report</title>
<style>
${STYLE}</style>
</head>
<body>
<h1>dlc-prune report</h1>
${report.banner ? `<p class="banner">${escape(report.banner)}</p>\n` : ""}${report.warnings.length ? `<ul class="warnings">${report.warnings.map((w) => `<li>${escape(w)}</li>`).join("")}</ul>\n` : ""}<h2 id="decision">What each file keeps</h2>
${report.runs.map((r) => decisionTable(report, r)).join("\n")}
${report.guidance.length ? `<ul class="guidance">${report.guidance.map((g) => `<li>${escape(g)}</li>`).join("")}</ul>\n` : ""}<p class="meta">${escape(report.tool)} ${escape(report.version)} &middot; data ${escape(report.data.path)}: ${report.data.rows} rows (sha256 ${report.data.sha256.slice(0, 12)})</p>
${report.runs.map(runLine).join("\n")}
<h2>Distributions</h2>
${await figures(distributionSpecs(report), many ? overlayCaptions(report) : undefined)}
${
  report.groups.length
    ? `<h2>Mix by group</h2>\n<div class="row">${await figures(
        report.groups.map((g) => compositionSpec(g, many)),
        many ? report.groups.map((g) => runCaption(g.run)) : undefined,
      )}</div>`
    : ""
}
${sameRowsTable(report)}
<h2>Overlap between ${many ? "the selections of each run" : "files"} (Jaccard of kept rows)</h2>
<div class="row">${overlapTables(report)}</div>
<h2>Scores compared</h2>
<p class="meta">Spearman's ρ over the rows both scores define. loss0 is the unmasked model's response NLL (perplexity filtering); ifd is loss0 divided by the loss of the response without its prompt.</p>
${table(
  ["score", "score", "Spearman ρ", "rows"],
  report.correlations.map((c) => [escape(c.a), escape(c.b), fixed(c.rho, 3), c.rows]),
)}
<div class="row">${await figures(
    report.scatter.map((s) => scatterSpec(s, rhoOf(s.run), many)),
    many ? report.scatter.map((s) => runCaption(s.run)) : undefined,
  )}</div>
<h2>Masking path</h2>
${await figures([maskingSpec(report.runs)])}
${report.flagged.some((f) => f.outliers.length || f.duplicates.length) ? `<h2>Flagged rows: outliers and duplicates</h2>\n${flaggedTables(report)}` : ""}
<h2>Easiest and hardest rows by DLC</h2>
${report.runs.some((r) => r.refine) ? `<p class="meta">≈: DLC estimated from the levels a row ran (score.refine), with its standard deviation.</p>` : ""}
${many ? `<details><summary>${report.examples.length} tables: each run's and group's easiest and hardest rows</summary>\n${examplesTables(report)}\n</details>` : examplesTables(report)}
</body>
</html>
`;
}
