// The run record: everything a scoring run's scores depend on, in one typed object. The score stage builds it
// once; the scores file stores it (its metadata), and the checkpoint, the merge check, select's data check,
// the manifest and the report all read it from there.
import { z } from "zod";
import { DEVICES, FORMATS, METHODS, ON_ERROR, SCOPES, TEMPLATES, TRUNCATED, fieldsSchema } from "../config/schema.js";
import { sha256 } from "../util/fs.js";
import { cutSchema } from "./cuts.js";
import { parseJson } from "../util/json.js";
import { TOOL_NAME, TOOL_VERSION } from "../version.js";

export const runRecordSchema = z.object({
  tool: z.literal(TOOL_NAME),
  version: z.string(),
  /** The data as read: its bytes, rows, the resolved format and field names, what a bad row did. */
  data: z.object({
    path: z.string(),
    sha256: z.string(),
    rows: z.number().int().nonnegative(),
    format: z.enum(FORMATS).exclude(["auto"]),
    fields: fieldsSchema,
    on_error: z.enum(ON_ERROR),
  }),
  /**
   * The model folder: sha256 of onnx/model.onnx and of each external data file it uses; and the Hugging Face
   * checkpoint it was converted from (model.path naming one), with the sha256 of its files.
   */
  model: z.object({
    path: z.string(),
    sha256: z.record(z.string(), z.string()),
    maskable_weights: z.number().int(),
    checkpoint: z.object({ path: z.string(), sha256: z.record(z.string(), z.string()) }).optional(),
  }),
  /**
   * What the model saw: the template, the longest sequence, and a sha256 of every row as rendered for the
   * tokenizer (whose files are in model.sha256), so that every shard, which tokenizes only its own rows, records the same.
   */
  tokens: z.object({
    template: z.enum(TEMPLATES).exclude(["auto"]),
    max_tokens: z.number().int(),
    truncated: z.enum(TRUNCATED),
    sha256: z.string(),
  }),
  masking: z.object({
    levels: z.number().int().positive(),
    interval: z.number(),
    scope: z.enum(SCOPES),
    method: z.enum(METHODS),
    seed: z.number().int(),
    include: z.array(z.string()),
    exclude: z.array(z.string()),
    /** Share of the maskable weights zero at each level. */
    sparsities: z.array(z.number()),
  }),
  /** IFD computed too: one more unmasked pass over the responses alone. */
  ifd: z.boolean(),
  /** score.refine: boundary: the calibration share, the confidence and the boundaries refined for; null: exact DLC for every row. */
  refine: z
    .object({
      sample: z.number(),
      confidence: z.number(),
      cuts: z.array(cutSchema),
    })
    .nullable(),
  /** The outlier flag's k (src/contract/flags): not part of the run's identity, since it is recomputed from the scores without scoring. */
  outlier_k: z.number(),
  /** Batches are part of a row's floating-point result (its padding), and so is the device. */
  batch_tokens: z.number().int(),
  block_rows: z.number().int(),
  device: z.enum(DEVICES).exclude(["auto"]),
  /**
   * What computed the scores: provenance, not part of the run's identity but for transformers.js (runIdentity).
   * (The thread count is left out: CPU results do not depend on it, and shards with other thread counts merge
   * to the same bytes.)
   */
  environment: z.object({ node: z.string(), onnxruntime: z.string(), transformers: z.string() }),
});

export type RunRecord = z.infer<typeof runRecordSchema>;
/** A Hugging Face checkpoint the scored model was converted from: its folder and the sha256 of each file read. */
export type CheckpointSource = NonNullable<RunRecord["model"]["checkpoint"]>;

/**
 * What makes two runs the same run: the record without where the files were and where it ran, without the
 * outlier flags' k (applied to the scores afterwards), and without what follows from the rest (the sparsities
 * and the count of maskable weights follow from the model and the masking config). Of the environment only
 * transformers.js's version counts: it tokenizes the rendered rows, which the record hashes instead of the tokens.
 */
export function runIdentity(record: RunRecord): Record<string, unknown> {
  const { data, model, masking, environment, outlier_k: _k, ...rest } = record;
  const { path: _data, ...dataIdentity } = data;
  // A converted checkpoint is the converted folder's files, which are hashed.
  const { path: _model, maskable_weights: _weights, checkpoint: _checkpoint, ...modelIdentity } = model;
  const { sparsities: _sparsities, ...maskingIdentity } = masking;
  return { ...rest, data: dataIdentity, model: modelIdentity, masking: maskingIdentity, transformers: environment.transformers };
}

/** A hash of the run's identity (and, for a checkpoint, of what its process scores: src/score/checkpoint). */
export function fingerprintOf(record: RunRecord, scope?: Record<string, unknown>): string {
  return sha256(JSON.stringify({ ...runIdentity(record), ...scope }));
}

/**
 * The version of dlc-prune that wrote `json` (a scores file's metadata, a manifest) when it is another one
 * than this: the file is ours, from an older (or newer) version this one does not read. Else undefined.
 */
export function otherVersionOf(json: string): string | undefined {
  const marker = parseJson(z.object({ tool: z.literal(TOOL_NAME), version: z.string() }), json);
  return "value" in marker && marker.value.version !== TOOL_VERSION ? marker.value.version : undefined;
}
