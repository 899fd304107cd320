// report.html: the report's figures as static SVG (Vega-Lite compiled and rendered in Node: no scripts, no
// network) and its tables. Everything drawn comes from report.json's numbers.
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import { describeCounts } from "../util/counts.js";
import type { Distribution, Report } from "./types.js";

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

/** The share of each group among every scored row and among each file's kept rows. */
function compositionSpec(g: Report["groups"][number], many: boolean): TopLevelSpec {
  return {
    $schema: SCHEMA,
    title: `Mix by ${g.field}: all scored rows vs each kept file${many ? ` (${g.run})` : ""}`,
    data: { values: g.bars },
    mark: "bar",
    width: WIDTH - 120,
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
    title: `loss0 (unmasked model's response NLL) vs DLC${many ? ` (${s.run})` : ""}: Spearman ρ ${fixed(rho, 3)}, ${s.points.length} rows`,
    data: { values: s.points },
    mark: { type: "circle", size: 22, opacity: 0.55, color: PALETTE[0] },
    width: 380,
    height: 380,
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

function outputsTable(report: Report): string {
  const many = report.runs.length > 1;
  return table(
    [
      ...(many ? ["run"] : []),
      "selection",
      "keep ratio",
      "rows kept",
      "response tokens kept",
      "easy / hard drawn",
      "truncated kept",
      "unscored",
      "mean DLC kept",
    ],
    report.outputs.map((o) => [
      ...(many ? [escape(o.run)] : []),
      escape(o.selection),
      o.ratio,
      `${o.rows_kept} (${pct(o.rows_kept_share)})`,
      `${o.tokens_kept} (${pct(o.tokens_kept_share)})`,
      o.drawn ? `${o.drawn.easy} / ${o.drawn.hard}` : "–",
      o.truncated_kept,
      `${o.unscored} (${escape(o.unscored_policy)})`,
      fixed(o.mean_dlc_kept),
    ]),
  );
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

function overlapTables(report: Report): string {
  const ratios = [...new Set(report.overlaps.map((o) => o.ratio))].sort((a, b) => a - b);
  return ratios
    .map((ratio) => {
      const pairs = report.overlaps.filter((o) => o.ratio === ratio);
      const names = [...new Set(pairs.flatMap((p) => [p.a, p.b]))];
      const at = (a: string, b: string) =>
        a === b ? "1" : (pairs.find((p) => (p.a === a && p.b === b) || (p.a === b && p.b === a))?.jaccard.toFixed(3) ?? "–");
      return `<h3>keep ${ratio}</h3>\n${table(
        ["", ...names.map(escape)],
        names.map((a) => [escape(a), ...names.map((b) => at(a, b))]),
        "matrix",
      )}`;
    })
    .join("\n");
}

function examplesTables(report: Report): string {
  const many = report.runs.length > 1;
  const rows = (title: string, list: Report["examples"][number]["easiest"]) =>
    list.map((e, i) => [
      i === 0 ? title : "",
      e.dlc_sd === null ? e.dlc.toFixed(4) : `≈ ${e.dlc.toFixed(4)} ± ${e.dlc_sd.toFixed(4)} (estimate)`,
      escape(e.id ?? `row ${e.row}`),
      `<span class="text">${escape(e.prompt)}</span>`,
      `<span class="text">${escape(e.response)}</span>`,
    ]);
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

async function page(report: Report): Promise<string> {
  const many = report.runs.length > 1;
  const rhoOf = (run: string) =>
    report.correlations.find((c) => c.a === (many ? `${run}: dlc` : "dlc") && c.b === (many ? `${run}: loss0` : "loss0"))?.rho ?? null;
  const figures = async (specs: TopLevelSpec[]) => (await Promise.all(specs.map(svg))).map((c) => `<figure>${c}</figure>`).join("\n");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>dlc-prune report</title>
<style>
body { font-family: sans-serif; margin: 2em auto; max-width: 900px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; }
table.examples td:nth-child(n+4) { text-align: left; max-width: 330px; }
.text { display: block; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
figure { margin: 1.5em 0; }
.meta { color: #555; font-size: 0.9em; }
.banner { background: #fff3cd; border: 1px solid #e0b84c; padding: 0.8em 1em; font-weight: bold; }
.warnings { background: #fff8e6; border: 1px solid #e0b84c; padding: 0.6em 1em 0.6em 2em; }
</style>
</head>
<body>
<h1>dlc-prune report</h1>
${report.banner ? `<p class="banner">${escape(report.banner)}</p>\n` : ""}${report.warnings.length ? `<ul class="warnings">${report.warnings.map((w) => `<li>${escape(w)}</li>`).join("")}</ul>\n` : ""}<p class="meta">${escape(report.tool)} ${escape(report.version)} &middot; data ${escape(report.data.path)}: ${report.data.rows} rows (sha256 ${report.data.sha256.slice(0, 12)})</p>
${report.runs.map(runLine).join("\n")}
<h2>What each file keeps</h2>
<p class="meta">Rows kept: the file's rows, and their share of all input rows. Response tokens kept: the scored response tokens of the file's scored rows, and their share of all scored rows' response tokens. Truncated: rows scored on the tokens that fit score.max_tokens.</p>
${outputsTable(report)}
<h2>Distributions</h2>
${await figures(report.distributions.map(cdfSpec))}
${report.groups.length ? `<h2>Mix by group</h2>\n${await figures(report.groups.map((g) => compositionSpec(g, many)))}` : ""}
${sameRowsTable(report)}
<h2>Overlap between files (Jaccard of kept rows)</h2>
${overlapTables(report)}
<h2>Scores compared</h2>
<p class="meta">Spearman's ρ over the rows both scores define. loss0 is the unmasked model's response NLL (perplexity filtering); ifd is loss0 divided by the loss of the response without its prompt.</p>
${table(
  ["score", "score", "Spearman ρ", "rows"],
  report.correlations.map((c) => [escape(c.a), escape(c.b), fixed(c.rho, 3), c.rows]),
)}
${await figures(report.scatter.map((s) => scatterSpec(s, rhoOf(s.run), many)))}
<h2>Masking path</h2>
${await figures([maskingSpec(report.runs)])}
<h2>Easiest and hardest rows by DLC</h2>
${report.runs.some((r) => r.refine) ? `<p class="meta">≈: DLC estimated from the levels a row ran (score.refine), with its standard deviation.</p>` : ""}
${examplesTables(report)}
</body>
</html>
`;
}
