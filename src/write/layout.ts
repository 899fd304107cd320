// What an output folder (select.out_dir) holds, and its manifest: the one record of which files dlc-prune
// wrote there. A file is dlc-prune's only if a valid manifest in the same folder lists it by name with the
// sha256 of its current bytes; nothing else in the folder is ever replaced or deleted.
import { join, relative, resolve } from "node:path";
import { z } from "zod";
import { mapPaths } from "../config/load.js";
import { RANKED_BY, STRATEGIES, type Config } from "../config/schema.js";
import { otherVersionOf, runRecordSchema } from "../contract/record.js";
import { describeCounts } from "../util/counts.js";
import { UserError } from "../util/errors.js";
import { readTextIfExists } from "../util/fs.js";
import { parseJson } from "../util/json.js";
import { TOOL_NAME } from "../version.js";

export const MANIFEST_FILE = "manifest.json";
export const UNSCORED_FILE = "unscored.jsonl";
export const REPORT_JSON = "report.json";
export const REPORT_HTML = "report.html";
export const REPORT_FILES = [REPORT_JSON, REPORT_HTML];

/**
 * The kept rows of one selection at one ratio: a folder of their own (`load_dataset("parquet",
 * data_dir=...)` reads one ratio; a glob over a folder never mixes ratios), named "<selection>-<ratio>".
 */
export const KEPT_FILE = "train.parquet";
export function keepFile(selection: string, ratio: number): string {
  return `${selection}-${ratio}/${KEPT_FILE}`;
}

/** The folders of kept rows: "flexrand-0.3", "hard-by-ifd-0.1". */
export const KEPT_FOLDER = new RegExp(`^(${STRATEGIES.join("|")})(-by-(${RANKED_BY.filter((b) => b !== "dlc").join("|")}))?-[0-9.e+-]+$`);

/** The names a manifest may list: the outputs above, never a path that leaves the folder. */
const OUTPUT_NAME = new RegExp(`^(${KEPT_FOLDER.source.slice(1, -1)}/train\\.parquet|unscored\\.jsonl|report\\.json|report\\.html)$`);

const counts = z.record(z.string(), z.number().int().nonnegative());

const outputSummary = z.object({
  /** The selection's name ("flexrand", "hard-by-ifd"): its strategy and the score it ranks by. */
  selection: z.string(),
  ratio: z.number(),
  file: z.string().regex(OUTPUT_NAME),
  strategy: z.string(),
  by: z.string(),
  split: z.number(),
  seed: z.number(),
  stratify: z.string().nullable(),
  nested: z.boolean(),
  /** kept: rows in the file; pruned: scored rows left out; unscored: rows without a score (kept or dropped by `unscored`). */
  rows: z.object({ kept: z.number().int(), pruned: z.number().int(), unscored: z.number().int() }),
  /** The rows in the file by status (ok, truncated, and unscored ones when `unscored: keep`). */
  kept_by_status: counts,
  /** Response tokens scored (after truncation) of the kept and the pruned scored rows. */
  response_tokens: z.object({ kept: z.number().int(), pruned: z.number().int() }),
  /** flexrand: scored rows drawn from the easy and the hard interval. */
  drawn: z.object({ easy: z.number().int(), hard: z.number().int() }).nullable(),
});

const fileEntry = z.object({
  file: z.string().regex(OUTPUT_NAME),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().nonnegative(),
});

export const manifestSchema = z.object({
  tool: z.literal(TOOL_NAME),
  version: z.string(),
  /** "publishing" while files are being renamed into place: then a name may be listed with its old and new bytes. */
  state: z.enum(["complete", "publishing"]),
  /** While publishing: the files being written (a report alone, or every output). */
  replacing: z.array(z.string()).optional(),
  /**
   * How this folder was made: the command line (null from the library API), and the onnxruntime threads of
   * the score stage when the same process ran it (null when the scores came from elsewhere: select, merge).
   * Paths in this file are relative to its folder.
   */
  invocation: z.object({ command: z.array(z.string()).nullable(), threads: z.number().int().nullable() }),
  config: z.custom<Config>((v) => typeof v === "object" && v !== null && !Array.isArray(v), "expected the run's config"),
  /** The scoring run the selection ranks by (the scores file's record: data, model, tokens, masking, environment). */
  run: runRecordSchema,
  scores: z.object({ path: z.string(), sha256: z.string(), fingerprint: z.string() }),
  /** Every input row by status: ok, truncated, and each reason a row has no score. */
  rows: z.object({ total: z.number().int(), by_status: counts }),
  unscored: z.object({ file: z.literal(UNSCORED_FILE), rows: z.number().int(), policy: z.string(), by_status: counts }),
  /** score.refine: boundary: rows with exact and with estimated DLC, the expected side-agreement, the boundaries; null without refinement. */
  refine: z
    .object({ exact: z.number().int(), estimated: z.number().int(), expected_agreement: z.number(), boundaries: z.array(z.string()) })
    .nullable(),
  outputs: z.array(outputSummary),
  /** Wall seconds of each stage of the run that wrote the folder (the one part of the manifest that is not deterministic). */
  timings: z.record(z.string(), z.number()),
  /** Every file of the folder dlc-prune wrote, with the sha256 and size of its bytes. */
  files: z.array(fileEntry),
});

export type Manifest = z.infer<typeof manifestSchema>;

/** One output in a line: "out/flexrand-0.3/train.parquet: 26 rows kept (21 ok, 5 truncated), 60 pruned, 1 unscored (drop)" */
export function describeOutput(dir: string, o: OutputSummary, unscoredPolicy: string): string {
  return `${join(dir, o.file)}: ${o.rows.kept} rows kept (${describeCounts(o.kept_by_status)}), ${o.rows.pruned} pruned, ${o.rows.unscored} unscored (${unscoredPolicy})`;
}

/** The manifest as the write stage makes it; the pipeline adds how the folder was made and how long it took. */
export type WrittenBody = Omit<Manifest, "state" | "files" | "invocation" | "timings">;
export type ManifestBody = Omit<Manifest, "state" | "files">;

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
    run: { ...run, data: { ...run.data, path: rebase(run.data.path) }, model: { ...run.model, path: rebase(run.model.path) } },
    scores: { ...scores, path: rebase(scores.path) },
  };
}
export type OutputSummary = z.infer<typeof outputSummary>;
export type FileEntry = z.infer<typeof fileEntry>;

/** The manifest of a folder `dlc-prune compare` wrote: one report across the output folders of earlier runs. */
export const compareManifestSchema = z.object({
  tool: z.literal(TOOL_NAME),
  version: z.string(),
  state: z.enum(["complete", "publishing"]),
  kind: z.literal("compare"),
  replacing: z.array(z.string()).optional(),
  invocation: z.object({ command: z.array(z.string()).nullable() }),
  /** The folders compared (relative to this one), each with the sha256 of the manifest it was read from. */
  compared: z.array(z.object({ dir: z.string(), manifest_sha256: z.string() })),
  timings: z.record(z.string(), z.number()),
  files: z.array(fileEntry),
});
export type CompareManifest = z.infer<typeof compareManifestSchema>;
export type CompareManifestBody = Omit<CompareManifest, "state" | "files">;

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
