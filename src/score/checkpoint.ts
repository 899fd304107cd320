// Resume after a crash: progress (the pass, its next batch, the losses so far) is saved beside the output in
// `<out>.work/`, each file written whole and renamed. Losses are saved before the state that points past
// them, so a crash at any moment leaves a state whose losses are on disk. Only these files are ever removed
// from the work folder: a folder holding anything else is refused.
// The state carries a checksum of itself and the losses, and every field is checked against the run: a
// checkpoint that fails (a damaged disk, an edited file) is discarded with a log line and scoring starts over.
// It is never used: resuming from wrong losses would give wrong scores without a word.
import { createHash } from "node:crypto";
import { readFile, readdir, rm, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import type { Shard } from "../contract/names.js";
import { fingerprintOf, runIdentity, type RunRecord } from "../contract/record.js";
import { UserError, isSystemError } from "../util/errors.js";
import { WRITE_CHECK, describeDifferences, ensureWritableDir, removeStaleTemps, tempTarget, writeFileAtomic } from "../util/fs.js";
import { parseJson } from "../util/json.js";

/** A loss not computed yet, or skipped (score.refine: a row settled before that level); computed losses are NLLs, never negative. */
export const NOT_RUN = -1;

export interface Progress {
  /** The pass being run (src/score/plan.ts passesOf), and the next batch of it; `passes` and 0 once every pass is done. */
  pass: number;
  nextBatch: number;
}

/**
 * Whose progress a checkpoint is, beyond the run's identity: the shard, and a sha256 of the tokens it scores
 * (src/text/encode encodedSha256): the record hashes the rendered rows, and resumed losses must be of these tokens.
 */
export interface CheckpointScope {
  shard: Shard | null;
  encoded_sha256: string;
}

/** What a checkpoint of this run must fit: its passes, the batches of each, and the losses (rows x valuesPerRow). */
export interface CheckpointShape {
  passes: number;
  batches: number;
  rows: number;
  valuesPerRow: number;
}

const STATE_FILE = "state.json";
const LOSSES_FILE = "losses.f64";

/** Whose progress a state file holds: read first, so that another run's progress is refused, not discarded. */
const ownerSchema = z.object({
  fingerprint: z.string(),
  identity: z.record(z.string(), z.unknown()),
});

const stateSchema = ownerSchema.extend({
  pass: z.number().int().nonnegative(),
  nextBatch: z.number().int().nonnegative(),
  /** sha256 of the progress, the fingerprint and the losses' bytes (checksumOf). */
  checksum: z.string().regex(/^[0-9a-f]{64}$/),
});

type StateFile = z.infer<typeof stateSchema>;

function checksumOf(progress: Progress, fingerprint: string, losses: Uint8Array): string {
  return createHash("sha256").update(`${progress.pass}/${progress.nextBatch}/${fingerprint}\n`).update(losses).digest("hex");
}

/** Why `state` and `bytes` cannot be this run's progress, or undefined when they can. */
function damage(state: StateFile, bytes: Uint8Array, shape: CheckpointShape): string | undefined {
  if (bytes.byteLength !== shape.rows * shape.valuesPerRow * 8)
    return `${LOSSES_FILE} has ${bytes.byteLength} bytes, not ${shape.rows * shape.valuesPerRow * 8}`;
  if (checksumOf(state, state.fingerprint, bytes) !== state.checksum) return `${STATE_FILE} and ${LOSSES_FILE} do not match their checksum`;
  if (state.pass > shape.passes) return `pass ${state.pass} of ${shape.passes}`;
  if (state.pass === shape.passes ? state.nextBatch !== 0 : state.nextBatch > shape.batches)
    return `batch ${state.nextBatch} of ${shape.batches} in pass ${state.pass}`;
  const losses = new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  // A loss is an NLL (>= 0; NaN or infinite where the model gave such: the row's status says so) or NOT_RUN.
  const bad = losses.findIndex((v) => !(v >= 0 || v === NOT_RUN || Number.isNaN(v)));
  if (bad >= 0) return `loss ${losses[bad]} of row ${Math.floor(bad / shape.valuesPerRow)}`;
  return undefined;
}

export function workDirOf(out: string): string {
  return `${out}.work`;
}

const isOurs = (name: string) => [STATE_FILE, LOSSES_FILE, WRITE_CHECK].includes(tempTarget(name) ?? name);

/** The work folder's entries, refusing one that holds files of someone else's. */
async function entries(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (isSystemError(err) && err.code === "ENOENT") return [];
    throw err;
  }
  const foreign = names.filter((n) => !isOurs(n));
  if (foreign.length)
    throw new UserError(
      `${dir}: holds files dlc-prune did not write (${foreign.slice(0, 5).join(", ")}); dlc-prune keeps its resume state there: move them, or choose another score.out`,
    );
  return names;
}

/** Removes the work folder's files (only ours), then the folder if that leaves it empty. */
async function removeWork(dir: string): Promise<void> {
  for (const name of await entries(dir)) await rm(join(dir, name), { force: true });
  await rmdir(dir).catch((err: unknown) => {
    if (!isSystemError(err) || (err.code !== "ENOENT" && err.code !== "ENOTEMPTY")) throw err;
  });
}

export class Checkpoint {
  private constructor(
    readonly dir: string,
    private readonly fingerprint: string,
    private readonly identity: Record<string, unknown>,
  ) {}

  /**
   * Opens the work folder of `out`. With saved progress of the same run and scope it returns that progress
   * and the losses; progress of another run is refused unless `restart`; a damaged checkpoint is discarded,
   * saying why through `log`.
   */
  static async open(
    out: string,
    record: RunRecord,
    scope: CheckpointScope,
    shape: CheckpointShape,
    restart: boolean,
    log: (line: string) => void,
  ): Promise<{ checkpoint: Checkpoint; progress: Progress; losses: Float64Array; resumed: boolean }> {
    const dir = workDirOf(out);
    const fingerprint = fingerprintOf(record, { ...scope });
    const identity = { ...runIdentity(record), ...scope };
    const checkpoint = new Checkpoint(dir, fingerprint, identity);
    const fresh = async () => {
      await ensureWritableDir(dir, "score.out");
      return {
        checkpoint,
        progress: { pass: 0, nextBatch: 0 },
        losses: new Float64Array(shape.rows * shape.valuesPerRow).fill(NOT_RUN),
        resumed: false,
      };
    };
    if (restart) await removeWork(dir);
    // The caller holds score.out's lock: temporary files here are a killed run's.
    await removeStaleTemps(dir, (target) => target === STATE_FILE || target === LOSSES_FILE);
    if (!(await entries(dir)).includes(STATE_FILE)) return fresh();
    const discard = async (why: string) => {
      log(`${join(dir, STATE_FILE)}: the checkpoint is damaged (${why}): discarded, scoring starts over`);
      await removeWork(dir);
      return fresh();
    };
    const text = await readFile(join(dir, STATE_FILE), "utf8");
    const owner = parseJson(ownerSchema, text);
    if ("why" in owner) return discard(owner.why);
    if (owner.value.fingerprint !== fingerprint)
      throw new UserError(
        `${dir}: holds progress of a different run (${describeDifferences(owner.value.identity, identity) || "tool version"}); rerun with --restart to start over`,
      );
    const parsed = parseJson(stateSchema, text);
    if ("why" in parsed) return discard(parsed.why);
    const state = parsed.value;
    let bytes: Buffer;
    try {
      bytes = await readFile(join(dir, LOSSES_FILE));
    } catch (err) {
      if (isSystemError(err) && err.code === "ENOENT") return discard(`${LOSSES_FILE} is missing`);
      throw err;
    }
    const why = damage(state, bytes, shape);
    if (why) return discard(why);
    const losses = new Float64Array(shape.rows * shape.valuesPerRow);
    new Uint8Array(losses.buffer).set(bytes);
    return { checkpoint, progress: { pass: state.pass, nextBatch: state.nextBatch }, losses, resumed: true };
  }

  /**
   * Removes the work folder of `out` once its scores are written, unless it holds another run's progress: a
   * run killed between writing the scores and removing its checkpoint left it.
   */
  static async removeDone(out: string, record: RunRecord, scope: CheckpointScope): Promise<boolean> {
    const dir = workDirOf(out);
    const names = await entries(dir);
    const owner = names.includes(STATE_FILE) ? parseJson(ownerSchema, await readFile(join(dir, STATE_FILE), "utf8")) : undefined;
    if (owner && "value" in owner && owner.value.fingerprint !== fingerprintOf(record, { ...scope })) return false;
    await removeWork(dir); // also an empty folder: a run killed before its rmdir
    return names.length > 0;
  }

  async save(progress: Progress, losses: Float64Array): Promise<void> {
    const bytes = new Uint8Array(losses.buffer, losses.byteOffset, losses.byteLength);
    const state: StateFile = {
      ...progress,
      fingerprint: this.fingerprint,
      identity: this.identity,
      checksum: checksumOf(progress, this.fingerprint, bytes),
    };
    await writeFileAtomic(join(this.dir, LOSSES_FILE), bytes);
    await writeFileAtomic(join(this.dir, STATE_FILE), JSON.stringify(state, null, 2));
  }

  async remove(): Promise<void> {
    await removeWork(this.dir);
  }
}
