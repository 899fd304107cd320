// The write stage: keep-<ratio>.parquet per ratio and unscored.jsonl, in one pass over the data, each under a
// temporary name in the output folder; the manifest's body says what they hold. Publishing (src/write/publish)
// renames them into place.
import type { Config } from "../config/schema.js";
import type { DataInspection } from "../data/inspect.js";
import type { DataSource } from "../data/source.js";
import type { ScoresFile } from "../scores/file.js";
import { Interrupted } from "../util/errors.js";
import type { Selection } from "../select/select.js";
import { TextFileWriter } from "../util/fs.js";
import { TOOL_NAME, TOOL_VERSION } from "../version.js";
import { statusCounts } from "../scores/status.js";
import { UNSCORED_FILE, keepFile, type OutputSummary, type WrittenBody } from "./layout.js";
import { ParquetOut } from "./parquet.js";
import type { OutputFolder } from "./publish.js";

export interface WriteInputs {
  config: Config;
  source: DataSource;
  scores: ScoresFile;
  selection: Selection;
  inspection: DataInspection;
  folder: OutputFolder;
  /** Aborted: stop (Interrupted); the caller discards the temporary files. */
  signal?: AbortSignal;
}

export interface Written {
  body: WrittenBody;
  /** Output name -> its complete temporary file. */
  files: Map<string, string>;
}

export async function writeOutputs({ config, source, scores, selection, inspection, folder, signal }: WriteInputs): Promise<Written> {
  const { cols } = scores;
  const names = [...selection.ratios.map((r) => keepFile(r.ratio)), UNSCORED_FILE];
  const files = new Map(names.map((name) => [name, folder.temp(name)]));
  const writers: ParquetOut[] = [];
  let unscored: TextFileWriter | undefined;
  try {
    unscored = await TextFileWriter.create(files.get(UNSCORED_FILE)!);
    for (const r of selection.ratios) writers.push(await ParquetOut.open(files.get(keepFile(r.ratio))!, inspection.columns));
    const byStatus: Record<string, number> = {};
    const keptStatuses: string[][] = selection.ratios.map(() => []);
    for await (const raw of source.rows()) {
      if (signal?.aborted) throw new Interrupted();
      const r = raw.row;
      const dlc = cols.dlc[r]!;
      const scored = !Number.isNaN(dlc);
      if (!scored) {
        byStatus[cols.status[r]!] = (byStatus[cols.status[r]!] ?? 0) + 1;
        const line = JSON.stringify({ row: r, ...(cols.id ? { id: cols.id[r] } : {}), status: cols.status[r], where: raw.where, ...(raw.text !== undefined ? { text: raw.text } : {}) });
        await unscored.write(line + "\n");
      }
      // A row that did not parse has no columns to write; unscored.jsonl holds its text.
      if (!raw.value) continue;
      for (let i = 0; i < writers.length; i++)
        if (selection.ratios[i]!.keep[r]) {
          await writers[i]!.append(raw.value, scored ? dlc : null, raw.where);
          keptStatuses[i]!.push(cols.status[r]!);
        }
    }
    await unscored.close();
    unscored = undefined;
    for (const w of writers) await w.close();
    const rowsWritten = writers.splice(0).map((w) => w.rows);
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
        rows: { kept: rowsWritten[i]!, pruned: selection.scored - sel.kept, unscored: selection.unscored.length },
        kept_by_status: statusCounts(keptStatuses[i]!),
        response_tokens: { kept: keptTokens, pruned: prunedTokens },
        drawn: config.select.strategy === "flexrand" ? { easy: sel.easy, hard: sel.hard } : null,
      };
    });
    const { fingerprint, shard: _shard, ...run } = scores.meta;
    const body: WrittenBody = {
      tool: TOOL_NAME,
      version: TOOL_VERSION,
      config,
      run,
      scores: { path: config.score.out, sha256: scores.sha256, fingerprint },
      rows: { total: cols.status.length, by_status: statusCounts(cols.status) },
      unscored: { file: UNSCORED_FILE, rows: selection.unscored.length, policy: config.select.unscored, by_status: byStatus },
      outputs,
    };
    return { body, files };
  } catch (err) {
    await unscored?.close().catch(() => {});
    await Promise.all(writers.map((w) => w.close().catch(() => {})));
    throw err;
  }
}
