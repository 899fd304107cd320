// An output folder's (select.out_dir) manifest (src/contract/manifest) as read from the folder: the one record
// of which files dlc-prune wrote there. A file is dlc-prune's only if a valid manifest in the same folder lists
// it by name with the sha256 of its current bytes; nothing else in the folder is ever replaced or deleted.
import { join, relative, resolve } from "node:path";
import { mapPaths } from "../config/load.js";
import {
  MANIFEST_FILE,
  compareManifestSchema,
  manifestSchema,
  type CompareManifest,
  type Manifest,
  type OutputSummary,
  type WrittenBody,
} from "../contract/manifest.js";
import { otherVersionOf } from "../contract/record.js";
import { describeCounts } from "../util/counts.js";
import { UserError } from "../util/errors.js";
import { readTextIfExists } from "../util/fs.js";
import { parseJson } from "../util/json.js";
import { TOOL_NAME } from "../version.js";

/** One output in a line: "out/flexrand-0.3/train.parquet: 26 rows kept (21 ok, 5 truncated), 60 pruned, 3 excluded, 1 unscored (drop)" */
export function describeOutput(dir: string, o: OutputSummary, unscoredPolicy: string): string {
  return `${join(dir, o.file)}: ${o.rows.kept} rows kept (${describeCounts(o.kept_by_status)}), ${o.rows.pruned} pruned, ${o.rows.excluded} excluded, ${o.rows.unscored} unscored (${unscoredPolicy})`;
}

/** The excluded rows in a line: "out/excluded.parquet: 12 rows excluded before selection (8 duplicates, 4 outliers; 12 ok, 0 truncated)" */
export function describeExcluded(dir: string, e: NonNullable<WrittenBody["excluded"]>): string {
  return `${join(dir, e.file)}: ${e.rows} rows excluded before selection (${describeCounts(e.by_reason) || "no rule matched"}; ${describeCounts(e.by_status)})`;
}

/** `path` (relative to `from`, or absolute) relative to `to`. */
function rebasePath(path: string, from: string, to: string): string {
  return relative(resolve(to), resolve(from, path)) || ".";
}

/**
 * The manifest's paths (the config's, the run's data and model, the scores file) rebased from folder `from`
 * to folder `to`: the manifest stores them relative to its own folder, so the folder can be moved with its
 * inputs, or read from any working directory.
 */
export function rebaseManifest<T extends WrittenBody>(body: T, from: string, to: string): T {
  const rebase = (p: string) => rebasePath(p, from, to);
  const config = structuredClone(body.config);
  mapPaths(config as unknown as Record<string, unknown>, rebase);
  const { run, scores } = body;
  return {
    ...body,
    config,
    run: {
      ...run,
      data: { ...run.data, path: rebase(run.data.path) },
      model: {
        ...run.model,
        path: rebase(run.model.path),
        ...(run.model.checkpoint && { checkpoint: { ...run.model.checkpoint, path: rebase(run.model.checkpoint.path) } }),
      },
    },
    scores: { ...scores, path: rebase(scores.path) },
  };
}

/** The manifest of `dir` (a select/run folder's or a compare folder's), validated; undefined when there is none. A file that is not one of ours is an error. */
export async function readFolderManifest(dir: string): Promise<Manifest | CompareManifest | undefined> {
  const path = join(dir, MANIFEST_FILE);
  const text = await readTextIfExists(path);
  if (text === undefined) return undefined;
  const parsed = parseJson(manifestSchema, text);
  if (!("why" in parsed)) return parsed.value;
  const compare = parseJson(compareManifestSchema, text);
  if (!("why" in compare)) return compare.value;
  const other = otherVersionOf(text);
  const by = other
    ? `written by ${TOOL_NAME} ${other}, whose manifest this version cannot check`
    : `not a manifest written by this version of ${TOOL_NAME} (${parsed.why})`;
  throw new UserError(
    `${path}: ${by}; it cannot vouch for the folder's files: choose an empty select.out_dir (or remove that folder yourself)`,
  );
}

/** The manifest of a folder select or run wrote; undefined when there is none. */
export async function readManifest(dir: string): Promise<Manifest | undefined> {
  const manifest = await readFolderManifest(dir);
  if (manifest && "kind" in manifest)
    throw new UserError(`${join(dir, MANIFEST_FILE)}: written by dlc-prune compare, not by select or run`);
  return manifest;
}
