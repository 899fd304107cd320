// The report stage: report.json (the numbers) and a self-contained report.html (Vega-Lite plots rendered to
// SVG in Node, no scripts) comparing what each keep ratio keeps.
import { writeFile } from "node:fs/promises";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { DataInspection } from "../data/inspect.js";
import type { ScoresFile } from "../scores/file.js";
import type { Selection } from "../select/select.js";
import { describeCounts } from "../util/counts.js";
import { atPath } from "../util/errors.js";
import { REPORT_HTML, REPORT_JSON } from "../write/layout.js";
import type { WrittenBody } from "../write/layout.js";
import type { OutputFolder } from "../write/publish.js";
const BINS = 30;

interface Histogram {
  edges: number[];
  /** "all" (every scored row) and one series per ratio: counts per bin. */
  series: Record<string, number[]>;
}

export interface Report {
  tool: string;
  version: string;
  model: string;
  data: { path: string; rows: number; scored: number; unscored: number; by_status: Record<string, number> };
  masking: { levels: number; sparsities: number[]; method: string; scope: string; interval: number; mean_loss: number[] };
  selection: { strategy: string; split: number; seed: number; stratify: string | null; nested: boolean; unscored: string; split_dlc: number | null };
  ratios: { ratio: number; rows_kept: number; rows_pruned: number; rows_unscored: number; kept_by_status: Record<string, number>; tokens_kept: number; tokens_pruned: number; mean_dlc_kept: number | null }[];
  histograms: { dlc: Histogram; response_tokens: Histogram; response_chars: Histogram };
  groups: { field: string; counts: Record<string, Record<string, number>> } | null;
}

const seriesName = (ratio: number) => `keep ${ratio}`;

function histogram(values: Float64Array, scored: number[], selection: Selection): Histogram {
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of scored) {
    const v = values[r]!;
    if (Number.isFinite(v) && v >= 0) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  }
  if (lo > hi) [lo, hi] = [0, 1];
  const width = hi > lo ? (hi - lo) / BINS : 1;
  const edges = Array.from({ length: BINS + 1 }, (_, i) => lo + i * width);
  const bin = (v: number) => Math.min(BINS - 1, Math.floor((v - lo) / width));
  const series: Record<string, number[]> = { all: new Array<number>(BINS).fill(0) };
  for (const s of selection.ratios) series[seriesName(s.ratio)] = new Array<number>(BINS).fill(0);
  for (const r of scored) {
    const v = values[r]!;
    if (!Number.isFinite(v) || v < 0) continue;
    const b = bin(v);
    series.all![b]!++;
    for (const s of selection.ratios) if (s.keep[r]) series[seriesName(s.ratio)]![b]!++;
  }
  return { edges, series };
}

export function buildReport(manifest: WrittenBody, scores: ScoresFile, selection: Selection, inspection: DataInspection): Report {
  const { cols } = scores;
  const { run } = manifest;
  const K = run.masking.levels;
  const scored: number[] = [];
  for (let r = 0; r < cols.dlc.length; r++) if (!Number.isNaN(cols.dlc[r]!)) scored.push(r);
  const meanLoss = Array.from({ length: K }, (_, k) => scored.reduce((a, r) => a + cols.losses[r * K + k]!, 0) / Math.max(scored.length, 1));
  const sel = manifest.config.select;
  const groupValues = inspection.group;
  let groups: Report["groups"] = null;
  if (groupValues && manifest.config.data.fields.group) {
    const counts: Record<string, Record<string, number>> = { all: {} };
    for (const s of selection.ratios) counts[seriesName(s.ratio)] = {};
    for (const r of scored) {
      const g = groupValues[r] ?? "(none)";
      counts.all![g] = (counts.all![g] ?? 0) + 1;
      for (const s of selection.ratios) if (s.keep[r]) counts[seriesName(s.ratio)]![g] = (counts[seriesName(s.ratio)]![g] ?? 0) + 1;
    }
    groups = { field: manifest.config.data.fields.group, counts };
  }
  return {
    tool: manifest.tool,
    version: manifest.version,
    model: run.model.path,
    data: { path: manifest.config.data.path, rows: run.data.rows, scored: scored.length, unscored: selection.unscored.length, by_status: manifest.rows.by_status },
    masking: { levels: K, sparsities: run.masking.sparsities, method: run.masking.method, scope: run.masking.scope, interval: run.masking.interval, mean_loss: meanLoss },
    selection: { strategy: sel.strategy, split: sel.split, seed: sel.seed, stratify: sel.stratify, nested: sel.nested, unscored: sel.unscored, split_dlc: selection.boundary },
    ratios: manifest.outputs.map((o, i) => {
      const kept = scored.filter((r) => selection.ratios[i]!.keep[r]);
      return {
        ratio: o.ratio,
        rows_kept: o.rows.kept,
        rows_pruned: o.rows.pruned,
        rows_unscored: o.rows.unscored,
        kept_by_status: o.kept_by_status,
        tokens_kept: o.response_tokens.kept,
        tokens_pruned: o.response_tokens.pruned,
        mean_dlc_kept: kept.length ? kept.reduce((a, r) => a + cols.dlc[r]!, 0) / kept.length : null,
      };
    }),
    histograms: {
      dlc: histogram(cols.dlc, scored, selection),
      response_tokens: histogram(Float64Array.from(cols.tokens), scored, selection),
      response_chars: histogram(Float64Array.from(inspection.responseChars), scored, selection),
    },
    groups,
  };
}

// ---- plots ----

const FONT = { config: { font: "sans-serif", view: { stroke: null } } };

/** Faceted histogram: every scored row in grey, the rows a ratio keeps in colour, one panel per ratio. */
function histogramSpec(title: string, axis: string, h: Histogram, rule: number | null): TopLevelSpec {
  const values: Record<string, unknown>[] = [];
  for (const [name, counts] of Object.entries(h.series)) {
    if (name === "all") continue;
    counts.forEach((kept, b) => values.push({ panel: name, start: h.edges[b], end: h.edges[b + 1], all: h.series.all![b], kept }));
  }
  // Pre-binned data: x/x2 are bin edges ("binned"), bars rise from 0.
  const x = { field: "start", type: "quantitative", bin: "binned", title: axis, scale: { zero: false } };
  const layers: unknown[] = [
    { mark: { type: "bar", color: "#d0d0d0" }, encoding: { x, x2: { field: "end" }, y: { field: "all", type: "quantitative", title: "rows" } } },
    { mark: { type: "bar", color: "#2f6db5" }, encoding: { x, x2: { field: "end" }, y: { field: "kept", type: "quantitative" } } },
  ];
  if (rule !== null) layers.push({ mark: { type: "rule", color: "#c0392b", strokeDash: [4, 3] }, encoding: { x: { datum: rule, type: "quantitative" } } });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    data: { values },
    facet: { row: { field: "panel", type: "nominal", title: null } },
    spec: { width: 560, height: 110, layer: layers },
    ...FONT,
  } as TopLevelSpec;
}

function compositionSpec(groups: NonNullable<Report["groups"]>): TopLevelSpec {
  const values = Object.entries(groups.counts).flatMap(([series, counts]) => Object.entries(counts).map(([group, rows]) => ({ series, group, rows })));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: `Composition by ${groups.field}: all scored rows vs each ratio`,
    data: { values },
    mark: "bar",
    width: 560,
    encoding: {
      y: { field: "series", type: "nominal", sort: null, title: null },
      x: { field: "rows", type: "quantitative", stack: "normalize", title: "share of rows" },
      color: { field: "group", type: "nominal", title: groups.field },
    },
    ...FONT,
  } as TopLevelSpec;
}

function maskingSpec(m: Report["masking"]): TopLevelSpec {
  const values = m.mean_loss.map((loss, level) => ({ level, loss, sparsity: `${(100 * m.sparsities[level]!).toFixed(1)}%` }));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: `Masking path: mean response loss per level (${m.method}, ${m.scope}, interval ${m.interval})`,
    data: { values },
    width: 560,
    height: 200,
    layer: [
      { mark: { type: "line", point: true }, encoding: { x: { field: "level", type: "ordinal", title: "level (sparsity below)", axis: { labelAngle: 0 } }, y: { field: "loss", type: "quantitative", scale: { zero: false }, title: "mean NLL (nats)" } } },
      { mark: { type: "text", dy: 14, fontSize: 10 }, encoding: { x: { field: "level", type: "ordinal" }, y: { field: "loss", type: "quantitative" }, text: { field: "sparsity" } } },
    ],
    ...FONT,
  } as TopLevelSpec;
}

async function svg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  const out = await view.toSVG();
  view.finalize();
  return out;
}

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

export async function renderHtml(report: Report): Promise<string> {
  const charts = [
    await svg(histogramSpec("DLC of the scored rows: kept (blue) out of all (grey)", "DLC (mean response NLL over the masking path, nats)", report.histograms.dlc, report.selection.split_dlc)),
    await svg(histogramSpec("Response tokens scored: kept vs all", "response tokens", report.histograms.response_tokens, null)),
    await svg(histogramSpec("Response length in characters: kept vs all", "response characters", report.histograms.response_chars, null)),
    ...(report.groups ? [await svg(compositionSpec(report.groups))] : []),
    await svg(maskingSpec(report.masking)),
  ];
  const rows = report.ratios
    .map((r) => `<tr><td>${r.ratio}</td><td>${r.rows_kept}</td><td>${r.kept_by_status.truncated ?? 0}</td><td>${r.rows_pruned}</td><td>${r.rows_unscored}</td><td>${r.tokens_kept}</td><td>${r.tokens_pruned}</td><td>${r.mean_dlc_kept === null ? "" : r.mean_dlc_kept.toFixed(4)}</td></tr>`)
    .join("\n");
  const s = report.selection;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>dlc-prune report</title>
<style>
body { font-family: sans-serif; margin: 2em auto; max-width: 760px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th { background: #f3f3f3; }
figure { margin: 2em 0; }
.meta { color: #555; font-size: 0.9em; }
</style>
</head>
<body>
<h1>dlc-prune report</h1>
<p class="meta">${escape(report.tool)} ${escape(report.version)} &middot; model ${escape(report.model)} &middot; data ${escape(report.data.path)}: ${report.data.rows} rows, ${report.data.scored} scored, ${report.data.unscored} unscored</p>
<p class="meta">rows by status: ${escape(describeCounts(report.data.by_status))} (truncated: scored on the tokens that fit score.max_tokens)</p>
<p class="meta">strategy ${escape(s.strategy)}${s.strategy === "flexrand" ? `, split ${s.split}` : ""}, seed ${s.seed}${s.stratify ? `, stratified by ${escape(s.stratify)}` : ""}, ${s.nested ? "nested" : "independent"} draws; unscored rows: ${escape(s.unscored)}${s.split_dlc === null ? "" : `; easy/hard boundary at DLC ${s.split_dlc.toFixed(4)} (red line)`}</p>
<h2>Rows and tokens kept per ratio</h2>
<table>
<tr><th>keep ratio</th><th>rows kept</th><th>of which truncated</th><th>rows pruned</th><th>rows unscored</th><th>response tokens kept</th><th>response tokens pruned</th><th>mean DLC kept</th></tr>
${rows}
</table>
${charts.map((c) => `<figure>${c}</figure>`).join("\n")}
</body>
</html>
`;
}

/** report.json and report.html as temporary files of the output folder, added to `files` (name -> temporary path) for publishing. */
export async function writeReport(folder: OutputFolder, report: Report, files: Map<string, string>): Promise<void> {
  const contents: [string, string][] = [
    [REPORT_JSON, JSON.stringify(report, null, 2) + "\n"],
    [REPORT_HTML, await renderHtml(report)],
  ];
  for (const [name, text] of contents) {
    const temp = folder.temp(name);
    await atPath(temp, () => writeFile(temp, text));
    files.set(name, temp);
  }
}
