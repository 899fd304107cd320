// `dlc-prune merge`: shard scores files -> the one scores file a single-process run writes. Refuses shards
// of different runs, duplicated or missing shards, and rows covered twice or not at all.
import { readdir } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import picomatch from "picomatch";
import { UserError } from "../util/errors.js";
import { describeDifferences, ensureWritableDir } from "../util/fs.js";
import { Lock } from "../util/lock.js";
import { RunInputs } from "../util/paths.js";
import { emptyColumns, existingScoresFile, readScoresFile, writeScoresFile, type ScoresFile, type ScoresMeta } from "./file.js";
import { outlierFlags } from "./flags.js";
import { lockPath } from "./names.js";
import { describeStatuses } from "./status.js";
import { runIdentity } from "./record.js";

/** Paths, with `*`/`?` patterns in the file name expanded (sorted): YAML lists have no shell to do it. */
export async function expandShardPaths(patterns: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of patterns) {
    if (!/[*?[]/.test(basename(p))) {
      out.push(p);
      continue;
    }
    const match = picomatch(basename(p));
    const dir = dirname(p);
    const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => match(n)).sort();
    if (!names.length) throw new UserError(`${p}: no shard file matches`);
    out.push(...names.map((n) => join(dir, n)));
  }
  return out;
}

/**
 * Merges shard files into `out` (named by `key` in messages: --out, score.out), which must not be one of them;
 * `log` hears of a stale lock taken over. Outliers are flagged with `outlierK` (a run's score.outlier_k), else
 * with the k the shards were scored with.
 */
export async function mergeShards(
  files: string[],
  out: string,
  key = "--out",
  log?: (line: string) => void,
  outlierK?: number,
): Promise<ScoresMeta> {
  if (files.length === 0) throw new UserError("merge: name the shard files to merge");
  const inputs = await RunInputs.of(files.map((path) => ({ path, role: "shard file" })));
  await inputs.check(out, key);
  await ensureWritableDir(dirname(out), key, out);
  await existingScoresFile(out, key);
  const lock = await Lock.acquire(lockPath(out), `${key} ${out}`, log);
  try {
    return await mergeInto(files, out, outlierK);
  } finally {
    await lock.release();
  }
}

async function mergeInto(files: string[], out: string, outlierK: number | undefined): Promise<ScoresMeta> {
  const shards: { file: string; scores: ScoresFile }[] = [];
  for (const file of files) shards.push({ file, scores: await readScoresFile(file) });
  const first = shards[0]!;
  const count = first.scores.meta.shard?.count;
  const byIndex = new Map<number, string>();
  for (const { file, scores } of shards) {
    const { meta } = scores;
    if (!meta.shard) throw new UserError(`${file}: not a shard (a complete scores file)`);
    if (meta.fingerprint !== first.scores.meta.fingerprint)
      throw new UserError(
        `${file}: a shard of another run than ${first.file} (${describeDifferences(runIdentity(first.scores.meta), runIdentity(meta)) || "fingerprints differ"})`,
      );
    if (meta.shard.count !== count)
      throw new UserError(`${file}: shard ${meta.shard.index}/${meta.shard.count}, but ${first.file} is one of ${count}`);
    const other = byIndex.get(meta.shard.index);
    if (other) throw new UserError(`${file}: duplicates shard ${meta.shard.index}/${count} (${other})`);
    byIndex.set(meta.shard.index, file);
  }
  const missing = Array.from({ length: count! }, (_, i) => i).filter((i) => !byIndex.has(i));
  if (missing.length)
    throw new UserError(
      `missing shard${missing.length > 1 ? "s" : ""} ${missing.map((i) => `${i}/${count}`).join(", ")} (merging ${files.join(", ")})`,
    );

  const meta = { ...first.scores.meta, outlier_k: outlierK ?? first.scores.meta.outlier_k };
  const n = meta.data.rows;
  const K = meta.masking.levels;
  const owner = new Array<string | undefined>(n);
  const merged = emptyColumns(n, K, !!first.scores.cols.id, meta.ifd, !!meta.refine);
  for (const { file, scores } of shards) {
    const c = scores.cols;
    c.row.forEach((row, i) => {
      if (row < 0 || row >= n) throw new UserError(`${file}: row ${row} is outside the data's ${n} rows`);
      if (owner[row]) throw new UserError(`${file}: row ${row} is also in ${owner[row]}`);
      owner[row] = file;
      if (merged.id) merged.id[row] = c.id![i]!;
      merged.dlc[row] = c.dlc[i]!;
      merged.losses.set(c.losses.subarray(i * K, (i + 1) * K), row * K);
      merged.tokens[row] = c.tokens[i]!;
      merged.status[row] = c.status[i]!;
      merged.loss0[row] = c.loss0[i]!;
      if (merged.ifd) merged.ifd[row] = c.ifd![i]!;
      if (merged.dlcExact) merged.dlcExact[row] = c.dlcExact![i]!;
      if (merged.dlcSd) merged.dlcSd[row] = c.dlcSd![i]!;
      merged.duplicateOf[row] = c.duplicateOf[i]!;
      merged.duplicatePairOf[row] = c.duplicatePairOf[i]!;
    });
  }
  const uncovered = owner.findIndex((o) => !o);
  if (uncovered >= 0) throw new UserError(`row ${uncovered} is in no shard (merging ${files.join(", ")})`);
  // A shard sees only its own rows; a single process refuses data of which no row is tokenized before scoring.
  if (!merged.tokens.some((t) => t > 0))
    throw new UserError(`${meta.data.path}: no row can be scored (${describeStatuses(merged.status)}; merging ${files.join(", ")})`);
  merged.outlier = outlierFlags(merged, meta.outlier_k);
  const whole: ScoresMeta = { ...meta, shard: null };
  await writeScoresFile(out, merged, whole);
  return whole;
}
