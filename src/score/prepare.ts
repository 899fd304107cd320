// Before any pass: the model prepared for scoring, its tokenizer, the rows encoded (a shard's own), and the
// checks that can fail early (the tokenizer fits the embedding, max_tokens fits the window, some row can be
// scored: a single process; the merge checks a shard's).
import { performance } from "node:perf_hooks";
import type { ScoreConfig } from "../config/schema.js";
import type { DataSource } from "../data/source.js";
import { loadScoringModel, type ScoringModel } from "../model/scoring-graph.js";
import { encodeDataset, type EncodedDataset } from "../text/encode.js";
import { loadTokenizer, type TextTokenizer } from "../text/tokenizer.js";
import { countBy, describeCounts } from "../util/counts.js";
import { maskedCounts } from "./masking.js";
import { UserError } from "../util/errors.js";
import type { ScoringConfig } from "./setup.js";
import type { Shard } from "../contract/names.js";
import { ownsRow } from "./plan.js";

export interface Prepared {
  model: ScoringModel;
  tokenizer: TextTokenizer;
  data: EncodedDataset;
  /** The longest sequence scored: score.max_tokens, or the model's window. */
  maxTokens: number;
  /** Wall time of loading the model and tokenizer, and of tokenizing the rows. */
  seconds: { load: number; encode: number };
}

/**
 * Levels past the point where the mask stops growing (interval x the weights left rounds to 0 in every
 * matrix) would repeat the last mask and only cost passes: refused, saying how many levels change it.
 */
function checkLevels(model: ScoringModel, s: ScoreConfig): void {
  const counts = maskedCounts(
    model.maskable.map((w) => w.data.length),
    s,
  );
  const still = counts.findIndex((c, k) => k > 0 && c === counts[k - 1]);
  if (still > 0)
    throw new UserError(
      `score.levels ${s.levels}: from level ${still + 1} on the mask no longer grows (interval ${s.interval} of the weights left rounds to none), so those levels would repeat level ${still}: use at most ${still} levels`,
    );
}

export async function prepare(
  config: ScoringConfig,
  modelPath: string,
  source: DataSource,
  onRow: (row: number) => void,
  log: (line: string) => void,
  shard: Shard | null = null,
): Promise<Prepared> {
  const s = config.score;
  const t0 = performance.now();
  const model = await loadScoringModel(modelPath, { include: s.include, exclude: s.exclude });
  checkLevels(model, s);
  const tokenizer = await loadTokenizer(modelPath);
  if (model.vocabSize !== null && tokenizer.vocabSize > model.vocabSize)
    throw new UserError(
      `${modelPath}: the tokenizer has ids up to ${tokenizer.vocabSize - 1}, but the model takes ${model.vocabSize} token ids: tokenizer.json belongs to another model`,
    );
  if (s.max_tokens !== null && model.maxPositions !== null && s.max_tokens > model.maxPositions)
    throw new UserError(`score.max_tokens ${s.max_tokens} exceeds the model's max positions ${model.maxPositions}`);
  const maxTokens = s.max_tokens ?? model.maxPositions;
  if (maxTokens === null)
    throw new UserError(`${modelPath}/config.json gives no window (max_position_embeddings, n_positions or n_ctx): set score.max_tokens`);
  const t1 = performance.now();
  const data = await encodeDataset(source, config.template, tokenizer, maxTokens, {
    truncated: s.truncated,
    ifd: s.ifd,
    owns: (row) => ownsRow(shard, s.block_rows, row),
    onRow,
    log,
  });
  const seconds = { load: (t1 - t0) / 1000, encode: (performance.now() - t1) / 1000 };
  if (shard && data.encoded.length + data.unscored.length === 0)
    log(
      `shard ${shard.index}/${shard.count} owns no rows: the ${data.rows} rows make ${Math.ceil(data.rows / s.block_rows)} blocks of score.block_rows ${s.block_rows}, fewer than ${shard.count}`,
    );
  // A shard sees its own rows only: the merge refuses data of which no row is tokenized.
  if (data.encoded.length === 0 && !shard)
    throw new UserError(
      `${source.path}: no row can be scored (${describeCounts(countBy(data.unscored.map((u) => u.status)))}${data.unscored.some((u) => u.status === "prompt-too-long") ? `; score.max_tokens is ${maxTokens}` : ""})`,
    );
  return { model, tokenizer, data, maxTokens, seconds };
}
