// The write stage: keep-<ratio>.parquet per ratio, unscored.jsonl and manifest.json, in one pass over the
// data. Every file is written under a temporary name and renamed only when all of them are complete.
import { createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm } from "node:fs/promises";
import { once } from "node:events";
import { join } from "node:path";
import type { Config } from "../config/schema.js";
import type { DataInspection } from "../data/inspect.js";
import { readRows } from "../data/read.js";
import type { ScoresFile } from "../score/scores-file.js";
import type { Selection } from "../select/select.js";
import { tempSibling, writeFileAtomic } from "../util/fs.js";
import { TOOL_NAME, TOOL_VERSION } from "../version.js";
import { ParquetOut } from "./parquet.js";
import { REPORT_HTML, REPORT_JSON } from "../report/report.js";

export const UNSCORED_FILE = "unscored.jsonl";
export const MANIFEST_FILE = "manifest.json";

export function keepFile(ratio: number): string {
  return `keep-${ratio}.parquet`;
}

export interface OutputSummary {
  ratio: number;
  file: string;
  strategy: string;
  split: number;
  seed: number;
  stratify: string | null;
  nested: boolean;
  /** kept: rows in the file; pruned: scored rows left out; unscored: rows without a score (kept or dropped by `unscored`). */
  rows: { kept: number; pruned: number; unscored: number };
  /** Response tokens scored (after truncation) of the kept and the pruned scored rows. */
  response_tokens: { kept: number; pruned: number };
  /** flexrand: scored rows drawn from the easy and the hard interval. */
  drawn: { easy: number; hard: number } | null;
}

export interface Manifest {
  tool: string;
  version: string;
  config: Config;
  data: { path: string; sha256: string; rows: number };
  scores: { path: string; sha256: string; levels: number; sparsities: number[]; method: string; scope: string; model: ScoresFile["meta"]["model"] };
  unscored: { file: string; rows: number; policy: string; by_status: Record<string, number> };
  outputs: OutputSummary[];
}

export interface WriteInputs {
  config: Config;
  scores: ScoresFile;
  dataSha256: string;
  selection: Selection;
  inspection: DataInspection;
}

/** A previous manifest's files that the new outputs do not replace (other ratios), and its report. */
async function staleOutputs(dir: string, current: string[]): Promise<string[]> {
  let previous: Manifest;
  try {
    previous = JSON.parse(await readFile(join(dir, MANIFEST_FILE), "utf8")) as Manifest;
  } catch {
    return [];
  }
  const files = (previous.outputs ?? []).map((o) => o.file).filter((f) => !current.includes(f));
  return [...files, REPORT_JSON, REPORT_HTML].map((f) => join(dir, f));
}

export async function writeOutputs({ config, scores, dataSha256, selection, inspection }: WriteInputs): Promise<Manifest> {
  const dir = config.select.out_dir;
  await mkdir(dir, { recursive: true });
  const { cols } = scores;
  const finals = [...selection.ratios.map((r) => join(dir, keepFile(r.ratio))), join(dir, UNSCORED_FILE)];
  const temps = finals.map(tempSibling);
  const writers: ParquetOut[] = [];
  const unscored = createWriteStream(temps[temps.length - 1]!);
  try {
    for (let i = 0; i < selection.ratios.length; i++) writers.push(await ParquetOut.open(temps[i]!, inspection.columns));
    const byStatus: Record<string, number> = {};
    for await (const raw of readRows(config.data.path)) {
      const r = raw.row;
      const dlc = cols.dlc[r]!;
      const scored = !Number.isNaN(dlc);
      if (!scored) {
        byStatus[cols.status[r]!] = (byStatus[cols.status[r]!] ?? 0) + 1;
        const line = JSON.stringify({ row: r, ...(cols.id ? { id: cols.id[r] } : {}), status: cols.status[r], where: raw.where, ...(raw.text !== undefined ? { text: raw.text } : {}) });
        if (!unscored.write(line + "\n")) await once(unscored, "drain");
      }
      // A row that did not parse has no columns to write; unscored.jsonl holds its text.
      if (!raw.value) continue;
      for (let i = 0; i < writers.length; i++) if (selection.ratios[i]!.keep[r]) await writers[i]!.append(raw.value, scored ? dlc : null, raw.where);
    }
    unscored.end();
    await once(unscored, "finish");
    for (const w of writers) await w.close();

    const outputs = selection.ratios.map((sel, i): OutputSummary => {
      let keptTokens = 0;
      let prunedTokens = 0;
      for (let r = 0; r < sel.keep.length; r++) {
        if (Number.isNaN(cols.dlc[r]!)) continue;
        if (sel.keep[r]) keptTokens += cols.tokens[r]!;
        else prunedTokens += cols.tokens[r]!;
      }
      return {
        ratio: sel.ratio,
        file: keepFile(sel.ratio),
        strategy: config.select.strategy,
        split: config.select.split,
        seed: config.select.seed,
        stratify: config.select.stratify,
        nested: config.select.nested,
        // kept: rows in the file (an unscored row that did not parse cannot be; unscored.jsonl has it).
        rows: { kept: writers[i]!.rows, pruned: selection.scored - sel.kept, unscored: selection.unscored.length },
        response_tokens: { kept: keptTokens, pruned: prunedTokens },
        drawn: config.select.strategy === "flexrand" ? { easy: sel.easy, hard: sel.hard } : null,
      };
    });
    const manifest: Manifest = {
      tool: TOOL_NAME,
      version: TOOL_VERSION,
      config,
      data: { path: config.data.path, sha256: dataSha256, rows: inspection.rows },
      scores: {
        path: config.score.out,
        sha256: scores.sha256,
        levels: scores.meta.levels,
        sparsities: scores.meta.sparsities,
        method: scores.meta.method,
        scope: scores.meta.scope,
        model: scores.meta.model,
      },
      unscored: { file: UNSCORED_FILE, rows: selection.unscored.length, policy: config.select.unscored, by_status: byStatus },
      outputs,
    };
    // Publish: the old manifest goes first and the new one last, so a manifest always lists complete files;
    // what the old one listed and the new one does not (other ratios, a report of other outputs) goes too.
    const stale = await staleOutputs(dir, outputs.map((o) => o.file));
    await rm(join(dir, MANIFEST_FILE), { force: true });
    for (let i = 0; i < finals.length; i++) await rename(temps[i]!, finals[i]!);
    await Promise.all(stale.map((f) => rm(f, { force: true })));
    await writeFileAtomic(join(dir, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + "\n");
    return manifest;
  } catch (err) {
    unscored.destroy();
    await Promise.all(writers.map((w) => w.close().catch(() => {})));
    await Promise.all(temps.map((t) => rm(t, { force: true })));
    throw err;
  }
}
