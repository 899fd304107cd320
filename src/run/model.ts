// The model folder the score stage loads, settled by the executor: the demo's tiny model built by the model
// kit on first use (config key model.tiny; its scores are meaningless and the log says so), or a Hugging Face
// checkpoint named by model.path converted once into model.cache (one folder per checkpoint, named by a
// sha256 of its files), or model.path itself (an ONNX model folder).
import { readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { createHash } from "node:crypto";
import type { Config } from "../config/schema.js";
import { runRecordSchema, type CheckpointSource } from "../contract/record.js";
import { importHf } from "../kit/hf-import.js";
import { writeTinyModel } from "../kit/tiny.js";
import { isCheckpointFolder } from "../model/folder.js";
import { UserError, readingFile } from "../util/errors.js";
import { ensureWritableDir, exists, sha256File, writeFileAtomic } from "../util/fs.js";
import { RunInputs } from "../util/paths.js";
import { parseJson } from "../util/json.js";
import { TOOL_NAME, TOOL_VERSION } from "../version.js";
import { z } from "zod";

/** The ONNX model folder to score, and the checkpoint it was converted from, if any. */
export interface ModelToScore {
  path: string;
  checkpoint?: CheckpointSource;
}

/** The checkpoint's files the import may read (weights, configs, tokenizer, chat template), by name. */
const CHECKPOINT_FILE = /^(.+\.safetensors|.+\.json|chat_template\.jinja)$/;

/** The record a conversion leaves beside its folder: what it was converted from, and by which version. */
const importRecordSchema = z.object({
  tool: z.string(),
  version: z.string(),
  dtype: z.string(),
  checkpoint: runRecordSchema.shape.model.shape.checkpoint.unwrap(),
});
type ImportRecord = z.infer<typeof importRecordSchema>;

/** How long a process waits for another one converting the same checkpoint (shards starting together). */
const WAIT_FOR_OTHER_MS = 30 * 60 * 1000;

export async function modelToScore(config: Pick<Config, "model" | "score">, log: (line: string) => void): Promise<ModelToScore> {
  const { path, tiny } = config.model;
  if (!path) throw new UserError("missing key model.path (the model folder to score with)");
  if (tiny) {
    await ensureDemoModel(path, tiny, log);
    return { path };
  }
  if (!(await isCheckpointFolder(path))) return { path };
  return importedCheckpoint(path, config, log);
}

async function ensureDemoModel(path: string, tiny: NonNullable<Config["model"]["tiny"]>, log: (line: string) => void): Promise<void> {
  log(
    `model.tiny: ${path} is a tiny model with random weights: its DLC scores are meaningless (a demo of the pipeline, not of the method)`,
  );
  if (await exists(path)) return;
  log(`building it with the model kit (dlc-prune model tiny)`);
  await writeTinyModel(path, tiny).catch(async (err) => {
    if (!(await exists(join(path, "onnx")))) throw err; // else another process (a shard) built the same model first
  });
}

/** model.cache, or models/ beside score.out. */
export const modelCacheOf = (config: Pick<Config, "model" | "score">): string =>
  config.model.cache ?? join(dirname(config.score.out), "models");

/** sha256 of each file of the checkpoint the import may read, by name, in name order. */
async function checkpointHashes(dir: string): Promise<Record<string, string>> {
  const names = (await readingFile(dir, () => readdir(dir))).filter((n) => CHECKPOINT_FILE.test(n)).sort();
  const hashes: Record<string, string> = {};
  for (const name of names) hashes[name] = await sha256File(join(dir, name));
  return hashes;
}

/** The conversion recorded in `recordFile`, if there is one; fails unless it is of this checkpoint, beside its folder. */
async function recorded(recordFile: string, dir: string, checkpoint: CheckpointSource): Promise<boolean> {
  if (!(await exists(recordFile))) return false;
  const parsed = parseJson(importRecordSchema, await readingFile(recordFile, () => readFile(recordFile, "utf8")));
  const ok = "value" in parsed && JSON.stringify(parsed.value.checkpoint.sha256) === JSON.stringify(checkpoint.sha256);
  if (!ok || !(await exists(dir)))
    throw new UserError(
      `${recordFile}: does not record ${dir} converted from this checkpoint (${"why" in parsed ? parsed.why : "other files or no folder"}); remove both to convert ${checkpoint.path} again`,
    );
  return true;
}

/**
 * The checkpoint's converted folder in the cache, converted now if it is not there yet. The folder is written
 * whole under a temporary name (src/kit/folder.ts) and its record after it: a folder without a record is an
 * interrupted conversion (refused, not trusted or removed) or one in progress in another process (waited for).
 */
async function importedCheckpoint(
  path: string,
  config: Pick<Config, "model" | "score">,
  log: (line: string) => void,
): Promise<ModelToScore> {
  const cache = modelCacheOf(config);
  const inputs = await RunInputs.of([{ path, role: "checkpoint folder (model.path)", folder: true }]);
  await inputs.check(cache, "model.cache");
  log(`model.path ${path} is a Hugging Face checkpoint: hashing its files`);
  const checkpoint: CheckpointSource = { path, sha256: await checkpointHashes(path) };
  const dtype = config.model.dtype;
  const key = createHash("sha256")
    .update(JSON.stringify({ files: checkpoint.sha256, dtype, version: TOOL_VERSION }))
    .digest("hex")
    .slice(0, 16);
  const dir = join(cache, key);
  const recordFile = `${dir}.json`;
  if (await recorded(recordFile, dir, checkpoint)) {
    log(`using ${dir}, converted from it earlier (${recordFile})`);
    return { path: dir, checkpoint };
  }
  if (await exists(dir))
    throw new UserError(
      `${dir}: a converted model without its record ${recordFile} (an interrupted conversion?); remove the folder to convert ${path} again`,
    );
  await ensureWritableDir(cache, "model.cache");
  log(`converting it to ${dir} (${dtype}; once per checkpoint)`);
  try {
    await importHf({ checkpoint: path, out: dir, dtype });
  } catch (err) {
    if (!(err instanceof UserError && /filled by another process/.test(err.message))) throw err;
    log(`another process is converting it to ${dir}: waiting for it`);
    for (const start = Date.now(); !(await recorded(recordFile, dir, checkpoint));) {
      if (Date.now() - start > WAIT_FOR_OTHER_MS) throw new UserError(`${dir}: another process's conversion did not finish in 30 minutes`);
      await new Promise((r) => setTimeout(r, 2000));
    }
    return { path: dir, checkpoint };
  }
  const record: ImportRecord = { tool: TOOL_NAME, version: TOOL_VERSION, dtype, checkpoint };
  await writeFileAtomic(recordFile, JSON.stringify(record, null, 2) + "\n");
  log(`converted to ${dir}`);
  return { path: dir, checkpoint };
}
