// What the executor's steps that write an output folder share: the one way a folder is written (under its
// lock, files complete under temporary names, then published with the manifest), and the report as files of
// the folder, its example rows' texts read from the data.
import { writeFile } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import type { CompareManifestBody, FileEntry, ManifestBody } from "../contract/manifest.js";
import { messagesOf, toSample } from "../data/formats.js";
import type { DataSource } from "../data/source.js";
import {
  buildReport,
  exampleRows,
  pickExamples,
  renderReportFiles,
  type ExampleText,
  type Report,
  type ReportSource,
} from "../report/report.js";
import { atPath } from "../util/errors.js";
import type { OutputFolder } from "../write/publish.js";

/** Where progress and notices go when the caller gives no `log`. */
export const defaultLog = (line: string) => process.stderr.write(`${line}\n`);

/** Seconds since `t0` (performance.now()), for the manifest's timings. */
export const since = (t0: number) => Math.round((performance.now() - t0) / 10) / 100;

/** What a step writes into a folder: its files (name -> complete temporary file), the manifest's body, and what the step returns. */
export interface FolderWrite<B, R> {
  files: Map<string, string>;
  body: B;
  result: R;
}

/**
 * Writes the claimed `folder`: `write` makes the files and the manifest's body, published together; on any
 * error the temporary files go. `locked`: the caller holds the folder's lock (run, from before scoring).
 */
export async function writeAndPublish<B extends ManifestBody | CompareManifestBody, R>(
  folder: OutputFolder,
  opts: { log: (line: string) => void; keep?: (name: string) => boolean; locked?: boolean },
  write: () => Promise<FolderWrite<B, R>>,
): Promise<{ manifest: B & { state: "complete"; files: FileEntry[] }; result: R }> {
  if (!opts.locked) await folder.lock(opts.log);
  try {
    const { files, body, result } = await write();
    const manifest = await folder.publish(files, body, { keep: opts.keep, log: opts.log });
    return { manifest, result };
  } catch (err) {
    await folder.discard();
    throw err;
  } finally {
    if (!opts.locked) await folder.release();
  }
}

/** Prompt and response of the given rows: the turns of each side joined. */
async function exampleTexts(data: DataSource, wanted: Set<number>): Promise<Map<number, ExampleText>> {
  const texts = new Map<number, ExampleText>();
  if (!wanted.size) return texts;
  const only = data.slice((row) => wanted.has(row));
  for await (const raw of only.rows()) {
    if (!raw.value) continue;
    const turns = messagesOf(toSample(raw, only.formatOf(raw.value)));
    const said = (assistant: boolean) =>
      turns
        .filter((t) => (t.role === "assistant") === assistant)
        .map((t) => t.content)
        .join(" / ");
    texts.set(raw.row, { prompt: said(false), response: said(true) });
  }
  return texts;
}

/**
 * The report of `sources` (runs over the data `data` reads) as temporary files of `folder` (name -> path),
 * for publishing.
 */
export async function writeReport(
  folder: OutputFolder,
  sources: ReportSource[],
  data: DataSource,
): Promise<{ report: Report; files: Map<string, string> }> {
  const picks = pickExamples(sources);
  const texts = await exampleTexts(data, exampleRows(picks));
  const report = buildReport(sources, { picks, texts });
  const files = new Map<string, string>();
  for (const [name, text] of await renderReportFiles(report)) {
    const temp = await folder.temp(name);
    await atPath(temp, () => writeFile(temp, text));
    files.set(name, temp);
  }
  return { report, files };
}
