// The write stage: <selection>-<ratio>/train.parquet per selection and ratio, unscored.jsonl and (select.exclude)
// excluded.parquet, in one pass over the data, each under a temporary name in the output folder; the manifest's body says what they hold. Publishing (src/write/publish)
// renames them into place.
import type { SelectConfig, SelectionsConfig } from "../config/schema.js";
import type { DataInspection } from "../data/inspect.js";
import { changedData, type DataSource } from "../data/source.js";
import type { ScoreColumns, ScoreName, ScoresFile } from "../contract/file.js";
import { Interrupted, UserError } from "../util/errors.js";
import { selectionsOf, type RatioSelection, type Selection, type SelectionChoice } from "../select/select.js";
import { TextFileWriter } from "../util/fs.js";
import { hasScore, statusCounts } from "../contract/status.js";
import { refineSummary } from "../contract/cuts.js";
import { flagCounts } from "../contract/flags.js";
import { describeRule } from "../select/exclude.js";
import { countBy } from "../util/counts.js";
import { EXCLUDED_FILE, UNSCORED_FILE, keepFile, type OutputSummary, type WrittenBody } from "../contract/manifest.js";
import { checkWritable, ParquetOut, type ScoreField, type ScoreValues } from "./parquet.js";
import type { OutputFolder } from "./publish.js";

export interface WriteInputs {
  select: SelectConfig;
  /** The scores file's path as the manifest records it (score.out). */
  scoresPath: string;
  source: DataSource;
  scores: ScoresFile;
  /** One per selection of the run (select.strategies). */
  selections: Selection[];
  /** select.exclude's reason per row (src/select/exclude); null without rules. */
  excluded: (string | null)[] | null;
  inspection: DataInspection;
  folder: OutputFolder;
  /** Aborted: stop (Interrupted); the caller discards the temporary files. */
  signal?: AbortSignal;
}

/** What the write stage says of the outputs; the executor adds the tool and the config around it. */
export type WrittenOutputs = Omit<WrittenBody, "tool" | "version" | "config">;

export interface Written {
  body: WrittenOutputs;
  /** Output name -> its complete temporary file. */
  files: Map<string, string>;
}

/** A Parquet file of rows of the data with score columns: which rows it holds, and the status of each written. */
interface RowsFile {
  name: string;
  fields: ScoreField[];
  holds: (row: number) => boolean;
  statuses: string[];
}

/** One kept file: a selection at a ratio. */
interface KeptFile extends RowsFile {
  sel: Selection;
  r: RatioSelection;
}

/**
 * The score columns of a selection's kept files: dlc, the score it ranks by, and for refined scores (score.refine:
 * boundary) dlc_exact (false where dlc is an estimate) and dlc_sd (the estimate's sd; null where exact).
 */
export function keptScoreFields(choice: SelectionChoice, refined: boolean): ScoreField[] {
  return scoreFields(choice.by === "dlc" ? ["dlc"] : ["dlc", choice.by], refined);
}

function scoreFields(scores: ScoreName[], refined: boolean): ScoreField[] {
  return [
    ...scores.map((name): ScoreField => ({ name, type: "DOUBLE" })),
    ...(refined
      ? ([
          { name: "dlc_exact", type: "BOOLEAN" },
          { name: "dlc_sd", type: "DOUBLE" },
        ] as const)
      : []),
  ];
}

/** excluded.parquet's score columns: the scores there are, the reason (the select.exclude rule), the row a duplicate repeats. */
function excludedFields(ifd: boolean, refined: boolean): ScoreField[] {
  return [
    ...scoreFields(ifd ? ["dlc", "loss0", "ifd"] : ["dlc", "loss0"], refined),
    { name: "excluded_by", type: "STRING" },
    { name: "duplicate_of", type: "INT64" },
  ];
}

/** The score columns of all the run's files of rows: none may clash with a data column. */
export const outputScoreColumns = (cfg: SelectionsConfig, refined: boolean, ifd: boolean) => [
  ...new Set([
    ...selectionsOf(cfg).flatMap((choice) => keptScoreFields(choice, refined).map((f) => f.name)),
    ...(cfg.exclude.length ? excludedFields(ifd, refined).map((f) => f.name) : []),
  ]),
];

/** Row `r`'s values of the score columns `fields`. */
function scoreValues(fields: ScoreField[], cols: ScoreColumns, r: number, excluded: (string | null)[] | null): ScoreValues {
  const value = ({ name }: ScoreField) => {
    if (name === "dlc_exact") return cols.dlcExact![r] === 1;
    if (name === "dlc_sd") return cols.dlcSd![r]!;
    if (name === "excluded_by") return excluded![r]!;
    if (name === "duplicate_of") return cols.duplicateOf[r]!;
    return cols[name as ScoreName]![r]!;
  };
  return Object.fromEntries(fields.map((f) => [f.name, value(f)]));
}

export async function writeOutputs(inputs: WriteInputs): Promise<Written> {
  const { select, scoresPath, scores, selections, inspection, folder, excluded } = inputs;
  const { cols } = scores;
  const refined = !!scores.meta.refine;
  const kept = selections.flatMap((sel) =>
    sel.ratios.map((r): KeptFile => ({
      sel,
      r,
      name: keepFile(sel.choice.name, r.ratio),
      statuses: [],
      fields: keptScoreFields(sel.choice, refined),
      holds: (row) => r.keep[row] === 1,
    })),
  );
  const aside: RowsFile | null = excluded && {
    name: EXCLUDED_FILE,
    fields: excludedFields(!!cols.ifd, refined),
    holds: (row) => excluded[row] !== null,
    statuses: [],
  };
  const targets: RowsFile[] = [...kept, ...(aside ? [aside] : [])];
  // Checked before scoring from the config (inspectForOutput); again from the scores file, which may be refined.
  checkWritable(inspection.columnTypes, inputs.source.path, [...new Set(targets.flatMap((o) => o.fields.map((f) => f.name)))]);
  const files = new Map<string, string>();
  for (const name of [...targets.map((o) => o.name), UNSCORED_FILE]) files.set(name, await folder.temp(name));
  const writers: ParquetOut[] = [];
  let unscored: TextFileWriter | undefined;
  try {
    unscored = await TextFileWriter.create(files.get(UNSCORED_FILE)!);
    for (const o of targets) writers.push(await ParquetOut.open(files.get(o.name)!, inspection.columnTypes, o.fields));
    const byStatus = await writePass(inputs, targets, writers, unscored);
    await unscored.close();
    unscored = undefined;
    for (const w of writers) await w.close();
    const rowsWritten = writers.splice(0).map((w) => w.rows);
    const { fingerprint, shard: _shard, ...run } = scores.meta;
    const body: WrittenOutputs = {
      run,
      scores: { path: scoresPath, sha256: scores.sha256, fingerprint },
      rows: { total: cols.status.length, by_status: statusCounts(cols.status) },
      unscored: { file: UNSCORED_FILE, rows: byStatusTotal(byStatus), policy: select.unscored, by_status: byStatus },
      refine: refineSummary(cols, scores.meta.refine?.cuts),
      flags: { ...flagCounts(cols), outlier_k: scores.meta.outlier_k },
      excluded: aside && {
        file: EXCLUDED_FILE,
        rows: aside.statuses.length,
        by_reason: byRule(select, excluded!),
        by_status: statusCounts(aside.statuses),
      },
      outputs: kept.map((o, i) => summarise(o, rowsWritten[i]!, cols, select, excluded)),
    };
    return { body, files };
  } catch (err) {
    await unscored?.close().catch(() => {});
    await Promise.all(writers.map((w) => w.close().catch(() => {})));
    throw err;
  }
}

/**
 * The one pass over the data: each row into the kept files that keep it, each row without a score into
 * unscored.jsonl; checked to be the data that was scored. Returns the unscored rows by status.
 */
async function writePass(
  { source, scores, signal, excluded }: WriteInputs,
  targets: RowsFile[],
  writers: ParquetOut[],
  unscored: TextFileWriter,
): Promise<Record<string, number>> {
  const { cols } = scores;
  const byStatus: Record<string, number> = {};
  const { rows: recorded, sha256: scoredSha } = scores.meta.data;
  let rowsRead = 0;
  // source.rows() refuses, at the end of the pass, bytes other than its first pass's; a file that grew is
  // refused at its first extra row, before a row without scores is written.
  for await (const raw of source.rows()) {
    if (signal?.aborted) throw new Interrupted();
    const r = raw.row;
    rowsRead++;
    if (r >= recorded)
      throw new UserError(
        `${source.path}: has more rows than the ${recorded} that were scored (${raw.where}): the file changed since it was scored; rerun the whole job (dlc-prune run) on the file as it is now`,
      );
    if (!hasScore(cols.dlc[r]!)) {
      byStatus[cols.status[r]!] = (byStatus[cols.status[r]!] ?? 0) + 1;
      const line = JSON.stringify({
        row: r,
        ...(cols.id ? { id: cols.id[r] } : {}),
        status: cols.status[r],
        where: raw.where,
        ...(raw.text !== undefined ? { text: raw.text } : {}),
      });
      await unscored.write(line + "\n");
    }
    // A row that did not parse has no columns to write; unscored.jsonl holds its text.
    if (!raw.value) continue;
    for (const [i, o] of targets.entries())
      if (o.holds(r)) {
        await writers[i]!.append(raw.value, raw.lossless, scoreValues(o.fields, cols, r, excluded), raw.where);
        o.statuses.push(cols.status[r]!);
      }
  }
  // The bytes just written out are the data that was scored: the same sha256 as the run record's.
  const readSha = await source.sha256();
  if (readSha !== scoredSha) throw changedData(source.path, scoredSha, readSha, "since it was scored");
  if (rowsRead !== recorded)
    throw new UserError(
      `${source.path}: has ${rowsRead} rows, but ${recorded} were scored: the file changed since it was scored; rerun the whole job on the file as it is now`,
    );
  return byStatus;
}

/** One kept file's line of the manifest, `rows` rows written to it. */
function summarise(
  { sel, r, name, statuses }: KeptFile,
  rows: number,
  cols: ScoreColumns,
  select: SelectConfig,
  excluded: (string | null)[] | null,
): OutputSummary {
  const tokens = { kept: 0, pruned: 0, excluded: 0 };
  const values = cols[sel.choice.by]!;
  for (let row = 0; row < r.keep.length; row++) {
    if (excluded?.[row]) tokens.excluded += cols.tokens[row]!;
    else if (hasScore(values[row]!)) tokens[r.keep[row] ? "kept" : "pruned"] += cols.tokens[row]!;
  }
  return {
    selection: sel.choice.name,
    ratio: r.ratio,
    file: name,
    strategy: sel.choice.strategy,
    by: sel.choice.by,
    split: select.split,
    seed: select.seed,
    stratify: select.stratify,
    nested: select.nested,
    // kept: rows in the file (an unscored row that did not parse cannot be; unscored.jsonl has it).
    rows: { kept: rows, pruned: sel.scored - r.kept, excluded: sel.excluded, unscored: sel.unscored.length },
    kept_by_status: statusCounts(statuses),
    response_tokens: tokens,
    drawn: sel.choice.strategy === "flexrand" ? { easy: r.easy, hard: r.hard } : null,
  };
}

/** The excluded rows by the rule that named each, in the order of select.exclude (a rule naming none: 0). */
function byRule(select: SelectConfig, excluded: (string | null)[]): Record<string, number> {
  const counts = countBy(excluded.filter((e) => e !== null));
  return Object.fromEntries(select.exclude.map(describeRule).map((rule) => [rule, counts[rule] ?? 0]));
}

const byStatusTotal = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
