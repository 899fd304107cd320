// `dlc-prune report` and `dlc-prune compare`: the report of finished output folders, their selections
// recomputed from the scores (they are deterministic), published in a folder of dlc-prune's.
import { join, relative, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { parseConfig } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { inspectData, type DataInspection } from "../data/inspect.js";
import { DataSource } from "../data/source.js";
import { type Report, type ReportSource } from "../report/report.js";
import { type ScoresFile } from "../contract/file.js";
import { type Selection } from "../select/select.js";
import { UserError } from "../util/errors.js";
import { sha256File } from "../util/fs.js";
import { TOOL_NAME, TOOL_VERSION } from "../version.js";
import { RunInputs } from "../util/paths.js";
import { MANIFEST_FILE, REPORT_FILES, type Manifest } from "../contract/manifest.js";
import { readManifest, rebaseManifest } from "../write/layout.js";
import { OutputFolder } from "../write/publish.js";
import { defaultLog, since, writeAndPublish, writeReport } from "./output.js";
import { claimOutputFolder, scoresForData, selectAll, selectInputs, type RunOptions } from "./select.js";

/** A finished select's folder, read back: its manifest, config, data and scores (checked unchanged), and its selections recomputed (they are deterministic). */
interface FinishedRun {
  dir: string;
  manifest: Manifest;
  config: Config;
  source: DataSource;
  scores: ScoresFile;
  inspection: DataInspection;
  selections: Selection[];
  excluded: (string | null)[] | null;
}

/**
 * A finished select's folder. `reportAgain`: `dlc-prune report` is rewriting its report, which it may also do
 * where an earlier `report` stopped while publishing (every other file of the folder is then as it was).
 */
async function readFinishedRun(
  dir: string,
  reportAgain = false,
): Promise<Omit<FinishedRun, "scores" | "inspection" | "selections" | "excluded">> {
  const manifest = await readManifest(dir);
  const path = join(dir, MANIFEST_FILE);
  if (!manifest) throw new UserError(`${dir}: no ${MANIFEST_FILE}; a folder written by dlc-prune select or run is needed`);
  const reportOnly = manifest.replacing?.every((f) => REPORT_FILES.includes(f)) ?? false;
  if (manifest.state !== "complete" && !(reportAgain && reportOnly))
    throw new UserError(
      reportOnly
        ? `${path}: its report was being written when dlc-prune report stopped; rerun dlc-prune report --out-dir ${dir}`
        : `${path}: its outputs were being published when the run stopped; rerun select or run`,
    );
  // The manifest's paths are relative to its folder; the stages read them relative to the working directory.
  const config = parseConfig(rebaseManifest(manifest, dir, ".").config as unknown as Record<string, unknown>, path);
  return { dir, manifest, config, source: new DataSource(config.data) };
}

async function selectAgain(run: Omit<FinishedRun, "scores" | "inspection" | "selections" | "excluded">): Promise<FinishedRun> {
  const { config, source, manifest, dir } = run;
  const scores = await scoresForData(config, source);
  if (scores.sha256 !== manifest.scores.sha256)
    throw new UserError(`${config.score.out}: changed since ${join(dir, MANIFEST_FILE)} was written; rerun select`);
  const inspection = await inspectData(source, config.select.stratify);
  return { ...run, scores, inspection, ...selectAll(config, scores, inspection) };
}

/** The report's view of a finished run, its paths relative to the report's folder `to`. */
function reportSourceOf(run: FinishedRun, label: string, to: string): ReportSource {
  const { state: _state, files: _files, replacing: _replacing, invocation: _invocation, timings: _timings, ...body } = run.manifest;
  return {
    label,
    body: rebaseManifest(body, run.dir, to),
    scores: run.scores,
    selections: run.selections,
    excluded: run.excluded,
    group: run.inspection.group,
  };
}

/** The report of a finished select, rewritten in its folder. */
export async function report(outDir: string, opts: RunOptions = {}): Promise<Report> {
  const found = await readFinishedRun(outDir, true);
  const folder = await claimOutputFolder(outDir, REPORT_FILES, found.config, await RunInputs.of(selectInputs(found.config, opts)));
  const keep = (name: string) => !REPORT_FILES.includes(name);
  const { result } = await writeAndPublish(folder, { log: opts.log ?? defaultLog, keep }, async () => {
    const t0 = performance.now();
    const finished = await selectAgain(found);
    const { report, files } = await writeReport(folder, [reportSourceOf(finished, ".", outDir)], finished.source);
    const { state: _state, files: _files, replacing: _replacing, ...body } = finished.manifest;
    return { files, body: { ...body, timings: { ...body.timings, report: since(t0) } }, result: report };
  });
  return result;
}

/**
 * One report across the output folders of earlier runs over the same data (other ratios, seeds, models or
 * scorers), written to `outDir` with a manifest naming the folders compared. Folders whose data differs are refused.
 */
export async function compare(dirs: string[], outDir: string, opts: RunOptions = {}): Promise<Report> {
  const log = opts.log ?? defaultLog;
  const twice = dirs.find((d, i) => dirs.findIndex((e) => resolve(e) === resolve(d)) !== i);
  if (twice) throw new UserError(`compare: ${twice} is listed twice`);
  const found = await Promise.all(dirs.map((d) => readFinishedRun(d)));
  const first = found[0]!;
  for (const f of found.slice(1)) {
    const [a, b] = [first.manifest.run.data, f.manifest.run.data];
    if (a.sha256 !== b.sha256)
      throw new UserError(
        `${f.dir}: its run read other data (${f.config.data.path}, sha256 ${b.sha256.slice(0, 12)}) than ${first.dir} (${first.config.data.path}, sha256 ${a.sha256.slice(0, 12)}); compare needs folders over the same data`,
      );
  }
  const inputs = await RunInputs.of(
    found.flatMap((f) => [{ path: f.dir, role: "folder compared", folder: true }, ...selectInputs(f.config, {})]),
  );
  await inputs.check(outDir, "--out");
  for (const name of [...REPORT_FILES, MANIFEST_FILE]) await inputs.check(join(outDir, name), "--out");
  const folder = await OutputFolder.claim(outDir);
  const { result } = await writeAndPublish(folder, { log }, async () => {
    const t0 = performance.now();
    const finished = [];
    for (const f of found) finished.push(await selectAgain(f));
    const sources = finished.map((f) => reportSourceOf(f, f.dir, outDir));
    const { report, files } = await writeReport(folder, sources, first.source);
    const compared = await Promise.all(
      found.map(async (f) => ({
        dir: relative(resolve(outDir), resolve(f.dir)),
        manifest_sha256: await sha256File(join(f.dir, MANIFEST_FILE)),
      })),
    );
    const body = {
      tool: TOOL_NAME,
      version: TOOL_VERSION,
      kind: "compare" as const,
      invocation: { command: opts.command ?? null },
      compared,
      timings: { report: since(t0) },
    };
    return { files, body, result: report };
  });
  return result;
}
