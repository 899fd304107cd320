// The score stage: rows -> encoded -> length-packed batches -> per-level response losses under progressively
// masked weights -> DLC -> the Arrow scores file. Resumable, deterministic, every row accounted for.
import { performance } from "node:perf_hooks";
import type * as ort from "onnxruntime-node";
import { Tensor } from "onnxruntime-node";
import type { Config } from "../config/schema.js";
import { loadScoringModel, LOGPROBS_OUTPUT, TARGETS_INPUT, type ScoringModel } from "../model/scoring-graph.js";
import { writeTinyModel, type TinyOptions } from "../model/tiny.js";
import { dirname, join } from "node:path";
import { encodeDataset, encodedSha256, type Encoded, type EncodedDataset } from "../text/encode.js";
import { loadTokenizer } from "../text/tokenizer.js";
import { countBy, describeCounts } from "../util/counts.js";
import { UserError } from "../util/errors.js";
import { ensureWritableDir, exists, sha256, sha256File } from "../util/fs.js";
import { RunInputs } from "../util/paths.js";
import { TOOL_NAME, TOOL_VERSION } from "../version.js";
import { planBatches, paddingRatio, type Batch } from "./batching.js";
import { Checkpoint, workDirOf } from "./checkpoint.js";
import { MaskSchedule } from "./masking.js";
import { existingScoresFile, writeScoresFile, type ScoreColumns, type ScoresFile, type ScoresMeta } from "./scores-file.js";
import { SessionFactory, threadCount, type Device } from "./session.js";
import { ownsBatch, ownsUnscoredRow, resolveShard, shardPath, type Shard } from "../shard/shard.js";

export interface ScoreProgress {
  phase: "encode" | "score";
  level: number;
  levels: number;
  rowsDone: number;
  rowsTotal: number;
  /** Non-padding tokens run through the model, over all levels (including before a resume). */
  tokensDone: number;
  tokensTotal: number;
  /** Of tokensDone, those of this process: the rate. */
  tokensThisProcess: number;
  /** Seconds this process has spent in the phase. */
  seconds: number;
}

export interface ScoreOptions {
  /** Discard saved progress of an earlier run. */
  restart?: boolean;
  /** The YAML recipe the config came from: an input like the data, never written to. */
  configFile?: string;
  log?: (line: string) => void;
  onProgress?: (p: ScoreProgress) => void;
}

export interface ScoreResult {
  out: string;
  /** The shard this process scored (null: all rows). */
  shard: Shard | null;
  dataSha256: string;
  rows: number;
  scored: number;
  resumed: boolean;
  /** The scores file was already up to date (same fingerprint) and was kept. */
  reused: boolean;
  device: Device;
  /** Non-padding input tokens of one pass; padded slots of one pass. */
  tokens: number;
  paddingRatio: number;
  /** Wall time: loading the model and data, then per level masking, session creation and the pass over the batches. */
  seconds: { prepare: number; levels: { mask: number; session: number; pass: number }[]; total: number };
}

/** The demo's model is built on first use by the model kit; its scores are meaningless and the log says so. */
async function ensureModel(config: Config, log: (line: string) => void): Promise<string> {
  const { path, tiny } = config.model;
  if (!path) throw new UserError("missing key model.path (the model folder to score with)");
  if (!tiny) return path;
  log(`model.tiny: ${path} is a tiny model with random weights: its DLC scores are meaningless (a demo of the pipeline, not of the method)`);
  if (await exists(path)) return path;
  log(`building it with the model kit (dlc-prune model tiny)`);
  await writeTinyModel(path, tinyOptions(tiny)).catch(async (err) => {
    if (!(await exists(join(path, "onnx")))) throw err; // else another process (a shard) built the same model first
  });
  return path;
}

function tinyOptions(tiny: NonNullable<Config["model"]["tiny"]>): TinyOptions {
  return {
    seed: tiny.seed,
    layers: tiny.layers,
    hidden: tiny.hidden,
    heads: tiny.heads,
    kvHeads: tiny.kv_heads,
    vocab: tiny.vocab,
    intermediate: tiny.intermediate,
    maxPositions: tiny.max_positions,
    tieEmbeddings: tiny.tie_embeddings,
  };
}

const i64 = (data: BigInt64Array, dims: number[]) => new Tensor("int64", data, dims);

/** Inputs of one right-padded batch: the model reads ids[0..n-2] and is scored on ids[1..n-1]. */
function batchFeeds(batch: Batch, encoded: Encoded[], model: ScoringModel, padId: number): Record<string, ort.Tensor> {
  const B = batch.members.length;
  const L = batch.length;
  const ids = new BigInt64Array(B * L).fill(BigInt(padId));
  const mask = new BigInt64Array(B * L);
  const positions = new BigInt64Array(B * L);
  const targets = new BigInt64Array(B * L);
  batch.members.forEach((m, b) => {
    const seq = encoded[m]!.ids;
    for (let t = 0; t + 1 < seq.length; t++) {
      ids[b * L + t] = BigInt(seq[t]!);
      targets[b * L + t] = BigInt(seq[t + 1]!);
      mask[b * L + t] = 1n;
      positions[b * L + t] = BigInt(t);
    }
  });
  const feeds: Record<string, ort.Tensor> = {
    [model.inputs.ids]: i64(ids, [B, L]),
    [model.inputs.mask]: i64(mask, [B, L]),
    [TARGETS_INPUT]: i64(targets, [B, L]),
  };
  if (model.inputs.positions) feeds[model.inputs.positions] = i64(positions, [B, L]);
  for (const p of model.inputs.past)
    feeds[p.name] = p.type === "float16" ? new Tensor("float16", new Uint16Array(0), [B, p.dims[0], 0, p.dims[1]]) : new Tensor("float32", new Float32Array(0), [B, p.dims[0], 0, p.dims[1]]);
  return feeds;
}

/** Mean NLL (nats) over each member's response tokens. */
function batchLosses(batch: Batch, encoded: Encoded[], logprobs: Float32Array): number[] {
  const L = batch.length;
  return batch.members.map((m, b) => {
    const e = encoded[m]!;
    let sum = 0;
    // Token p is predicted at input position p - 1.
    for (const [start, end] of e.spans) for (let p = start; p < end; p++) sum -= logprobs[b * L + p - 1]!;
    return sum / e.tokens;
  });
}

/**
 * What the scores depend on: a resumed run, and the shards of one run, must match it exactly. Thread counts
 * are not part of it: onnxruntime's CPU results do not depend on them (tested), so shards may split cores.
 */
function identityOf(config: Config, model: ScoringModel, dataSha: string, data: EncodedDataset, maxTokens: number, device: Device): Record<string, unknown> {
  const s = config.score;
  return {
    tool_version: TOOL_VERSION,
    data_sha256: dataSha,
    model_sha256: model.sha256,
    // The token ids themselves: covers the tokenizer files, chat template, format and truncation.
    encoded_sha256: encodedSha256(data),
    format: data.format,
    on_error: config.data.on_error,
    template: data.template,
    levels: s.levels,
    interval: s.interval,
    scope: s.scope,
    method: s.method,
    seed: s.seed,
    include: s.include,
    exclude: s.exclude,
    batch_tokens: s.batch_tokens,
    max_tokens: maxTokens,
    device,
  };
}

/**
 * Where this process writes its scores (the shard's file in a job array), checked before any work: not an
 * input, in a folder that can be written, and not a file of someone else's.
 */
async function scoresDestination(config: Config, shard: Shard | null, modelPath: string, configFile: string | undefined): Promise<{ out: string; existing?: ScoresFile }> {
  const out = shard ? shardPath(config.score.out, shard) : config.score.out;
  const inputs = await RunInputs.of([
    { path: config.data.path, role: "data file" },
    { path: modelPath, role: "model folder", folder: true },
    ...(configFile ? [{ path: configFile, role: "config file" }] : []),
  ]);
  await inputs.check(out, "score.out");
  await inputs.check(workDirOf(out), "score.out");
  await ensureWritableDir(dirname(out), "score.out", out);
  return { out, existing: await existingScoresFile(out, "score.out") };
}

export async function score(config: Config, opts: ScoreOptions = {}): Promise<ScoreResult> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const s = config.score;
  const started = performance.now();
  const modelPath = await ensureModel(config, log);
  const shard = resolveShard(s.shard, s.shards);
  const { out, existing } = await scoresDestination(config, shard, modelPath, opts.configFile);
  const model = await loadScoringModel(modelPath, { include: s.include, exclude: s.exclude });
  const tokenizer = await loadTokenizer(modelPath);
  if (model.vocabSize !== null && tokenizer.vocabSize > model.vocabSize)
    throw new UserError(`${modelPath}: the tokenizer has ids up to ${tokenizer.vocabSize - 1}, but the model takes ${model.vocabSize} token ids: tokenizer.json belongs to another model`);
  if (s.max_tokens !== null && model.maxPositions !== null && s.max_tokens > model.maxPositions)
    throw new UserError(`score.max_tokens ${s.max_tokens} exceeds the model's max positions ${model.maxPositions}`);
  const maxTokens = s.max_tokens ?? model.maxPositions;
  if (maxTokens === null) throw new UserError(`${modelPath}/config.json has no max_position_embeddings: set score.max_tokens`);

  const data = await encodeDataset(config, tokenizer, maxTokens, (row) => {
    if (row % 1000 === 0) opts.onProgress?.({ phase: "encode", level: 0, levels: s.levels, rowsDone: row, rowsTotal: 0, tokensDone: 0, tokensTotal: 0, tokensThisProcess: 0, seconds: (performance.now() - started) / 1000 });
  });
  const prepareSeconds = (performance.now() - started) / 1000;
  const { encoded } = data;
  if (encoded.length === 0) throw new UserError(`${config.data.path}: no row can be scored (${describeCounts(countBy(data.unscored.map((u) => u.status)))}${data.unscored.some((u) => u.status === "prompt-too-long") ? `; score.max_tokens is ${maxTokens}` : ""})`);
  const lengths = encoded.map((e) => e.ids.length - 1);
  // One plan for all rows; a shard scores its share of the batches.
  const batches = planBatches(lengths, s.batch_tokens).filter((_, b) => ownsBatch(shard, b));
  const batchTokens = batches.map((b) => b.members.reduce((a, m) => a + lengths[m]!, 0));
  const passTokens = batchTokens.reduce((a, b) => a + b, 0);
  const passRows = batches.reduce((a, b) => a + b.members.length, 0);
  const padding = paddingRatio(batches, lengths);
  log(
    `${data.rows} rows (${data.format.format}, template ${data.template}): ${encoded.length} to score, ${data.unscored.length} unscored; ` +
      `${shard ? `shard ${shard.index}/${shard.count}: ${passRows} rows, ` : ""}${batches.length} batches, padding ${(100 * padding).toFixed(1)}%`,
  );

  const threads = threadCount(s.threads);
  const sessions = new SessionFactory(s.device, threads, log);
  const device = await sessions.resolve(model);
  const dataSha = await sha256File(config.data.path);
  const identity = identityOf(config, model, dataSha, data, maxTokens, device);
  const fingerprint = sha256(JSON.stringify(identity));
  const K = s.levels;
  const summary = { out, shard, rows: data.rows, scored: passRows, tokens: passTokens, paddingRatio: padding, dataSha256: dataSha, device };
  if (!opts.restart && existing?.meta.fingerprint === fingerprint) {
    log(`${out} is up to date (same model, tokens and scoring config): kept; --restart rescores`);
    return { ...summary, resumed: false, reused: true, seconds: { prepare: prepareSeconds, levels: [], total: (performance.now() - started) / 1000 } };
  }
  if (existing) log(`${out} holds the scores of another run (other data, model or scoring config): they are replaced when scoring ends`);
  const schedule = new MaskSchedule(model.maskable, { scope: s.scope, method: s.method, interval: s.interval, levels: s.levels, seed: s.seed });
  // Progress is per shard: a shard's checkpoint never continues another's.
  const progressIdentity = { ...identity, shard };
  const { checkpoint, progress, losses, resumed } = await Checkpoint.open(out, sha256(JSON.stringify(progressIdentity)), progressIdentity, encoded.length * K, opts.restart ?? false);
  if (resumed) log(`resuming ${out} at level ${progress.level}/${K}, batch ${progress.nextBatch}/${batches.length}`);

  const levelSeconds: ScoreResult["seconds"]["levels"] = [];
  const scoreStart = performance.now();
  let lastSave = performance.now();
  let tokensDone = progress.level * passTokens + batchTokens.slice(0, progress.nextBatch).reduce((a, b) => a + b, 0);
  const tokensBefore = tokensDone; // done before a resume: not part of this process's rate
  let rowsDone = batches.slice(0, progress.nextBatch).reduce((a, b) => a + b.members.length, 0);
  for (let level = progress.level; level < K; level++) {
    const t0 = performance.now();
    schedule.applyLevel(level);
    const t1 = performance.now();
    const session = await sessions.create(model);
    const t2 = performance.now();
    try {
      for (let b = level === progress.level ? progress.nextBatch : 0; b < batches.length; b++) {
        const batch = batches[b]!;
        const result = await session.run(batchFeeds(batch, encoded, model, tokenizer.padId)).catch((err: Error) => {
          // A model that does not fit the scorer's inputs, or a batch the device cannot hold.
          throw new UserError(`${model.dir}: onnxruntime failed on a batch of ${batch.members.length} rows x ${batch.length} tokens (${err.message.split("\n")[0]}); check the model folder, or lower score.batch_tokens`);
        });
        const values = batchLosses(batch, encoded, (result[LOGPROBS_OUTPUT] as ort.Tensor).data as Float32Array);
        batch.members.forEach((m, j) => (losses[m * K + level] = values[j]!));
        tokensDone += batchTokens[b]!;
        rowsDone += batch.members.length;
        opts.onProgress?.({
          phase: "score",
          level,
          levels: K,
          rowsDone,
          rowsTotal: passRows,
          tokensDone,
          tokensTotal: passTokens * K,
          tokensThisProcess: tokensDone - tokensBefore,
          seconds: (performance.now() - scoreStart) / 1000,
        });
        if ((performance.now() - lastSave) / 1000 >= s.checkpoint_seconds) {
          await checkpoint.save({ level, nextBatch: b + 1 }, losses);
          lastSave = performance.now();
        }
      }
    } finally {
      await session.release();
    }
    levelSeconds.push({ mask: (t1 - t0) / 1000, session: (t2 - t1) / 1000, pass: (performance.now() - t2) / 1000 });
    rowsDone = 0;
    await checkpoint.save({ level: level + 1, nextBatch: 0 }, losses);
  }

  const cols = columns(data, losses, K, shard ? new Set(batches.flatMap((b) => b.members)) : null, shard);
  const meta: ScoresMeta = {
    tool: TOOL_NAME,
    version: TOOL_VERSION,
    model: { path: model.dir, sha256: model.sha256 },
    data: { path: config.data.path, sha256: dataSha, rows: data.rows, format: data.format.format },
    template: data.template,
    levels: K,
    sparsities: schedule.sparsities(),
    maskable_weights: schedule.totalWeights,
    method: s.method,
    scope: s.scope,
    interval: s.interval,
    seed: s.seed,
    include: s.include,
    exclude: s.exclude,
    max_tokens: maxTokens,
    batch_tokens: s.batch_tokens,
    fingerprint,
    shard,
  };
  await writeScoresFile(out, cols, meta);
  await checkpoint.remove();
  log(`wrote ${out}: ${passRows} rows scored over ${K} levels (sparsity ${meta.sparsities.map((x) => `${(100 * x).toFixed(1)}%`).join(" -> ")})`);
  return {
    ...summary,
    resumed,
    reused: false,
    seconds: { prepare: prepareSeconds, levels: levelSeconds, total: (performance.now() - started) / 1000 },
  };
}

/**
 * One entry per row, in row order: scored rows get their losses, the others their reason. A shard holds
 * the rows of its batches (`members`, indices into the encoded rows) and its share of the unscored rows.
 */
function columns(data: EncodedDataset, losses: Float64Array, K: number, members: Set<number> | null, shard: Shard | null): ScoreColumns {
  const rows: { row: number; encoded?: number; status: string }[] = [];
  data.encoded.forEach((e, m) => (!members || members.has(m)) && rows.push({ row: e.row, encoded: m, status: e.status }));
  for (const u of data.unscored) if (ownsUnscoredRow(shard, u.row)) rows.push({ row: u.row, status: u.status });
  rows.sort((a, b) => a.row - b.row);
  const n = rows.length;
  const cols: ScoreColumns = {
    row: Float64Array.from(rows, (r) => r.row),
    id: data.ids ? rows.map((r) => data.ids![r.row]!) : null,
    dlc: new Float64Array(n).fill(NaN),
    losses: new Float32Array(n * K),
    tokens: new Int32Array(n),
    status: rows.map((r) => r.status),
  };
  rows.forEach((r, i) => {
    if (r.encoded === undefined) return;
    let sum = 0;
    for (let k = 0; k < K; k++) {
      sum += losses[r.encoded * K + k]!;
      cols.losses[i * K + k] = losses[r.encoded * K + k]!;
    }
    cols.tokens[i] = data.encoded[r.encoded]!.tokens;
    // A non-finite loss (a broken model or an fp16 overflow) is no score: say so instead of ranking it.
    if (Number.isFinite(sum)) cols.dlc[i] = sum / K;
    else cols.status[i] = "non-finite-loss";
  });
  return cols;
}
