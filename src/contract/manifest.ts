// An output folder's manifest: the one record of which files dlc-prune wrote there and what they hold, and
// the names those files have. The write stage makes it, the report and the executor read it (the folder's
// claim and publishing: src/write/publish).
import { z } from "zod";
import { RANKED_BY, STRATEGIES, type Config } from "../config/schema.js";
import { runRecordSchema } from "./record.js";
import { TOOL_NAME } from "../version.js";

export const MANIFEST_FILE = "manifest.json";
export const UNSCORED_FILE = "unscored.jsonl";
/** select.exclude's rows, with the reason: beside the selection folders, never read as training data by a glob over one. */
export const EXCLUDED_FILE = "excluded.parquet";
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
const OUTPUT_NAME = new RegExp(
  `^(${KEPT_FOLDER.source.slice(1, -1)}/train\\.parquet|unscored\\.jsonl|excluded\\.parquet|report\\.json|report\\.html)$`,
);

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
  /**
   * kept: rows in the file; pruned: scored rows left out; excluded: scored rows select.exclude set aside before
   * the draw; unscored: rows without a score (kept or dropped by `unscored`).
   */
  rows: z.object({ kept: z.number().int(), pruned: z.number().int(), excluded: z.number().int(), unscored: z.number().int() }),
  /** The rows in the file by status (ok, truncated, and unscored ones when `unscored: keep`). */
  kept_by_status: counts,
  /** Response tokens scored (after truncation) of the kept, the pruned and the excluded scored rows. */
  response_tokens: z.object({ kept: z.number().int(), pruned: z.number().int(), excluded: z.number().int() }),
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
  /** The scores file's flags (src/contract/flags): duplicate responses, those with the same prompt too, outliers. */
  flags: z.object({ duplicates: z.number().int(), duplicate_pairs: z.number().int(), outliers: z.number().int(), outlier_k: z.number() }),
  /** select.exclude: the rows set aside before every selection, by the rule that named each and by status; null without rules. */
  excluded: z.object({ file: z.literal(EXCLUDED_FILE), rows: z.number().int(), by_reason: counts, by_status: counts }).nullable(),
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
export type OutputSummary = z.infer<typeof outputSummary>;
export type FileEntry = z.infer<typeof fileEntry>;

/** The manifest's account of the folder's outputs: what the report reads; the executor adds how the folder was made and how long it took. */
export type WrittenBody = Omit<Manifest, "state" | "files" | "invocation" | "timings">;
export type ManifestBody = Omit<Manifest, "state" | "files">;

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
