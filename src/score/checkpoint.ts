// Resume after a crash: progress (the pass, its next batch, the losses so far) is saved beside the output in
// `<out>.work/`, each file written whole and renamed. Losses are saved before the state that points past
// them, so a crash at any moment leaves a state whose losses are on disk. Only these files are ever removed
// from the work folder: a folder holding anything else is refused.
import { readFile, readdir, rm, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import type { Shard } from "../scores/names.js";
import { fingerprintOf, runIdentity, type RunRecord } from "../scores/record.js";
import { UserError, isSystemError } from "../util/errors.js";
import { WRITE_CHECK, describeDifferences, ensureWritableDir, removeStaleTemps, tempTarget, writeFileAtomic } from "../util/fs.js";
import { parseJson } from "../util/json.js";

/** A loss not computed yet, or skipped (score.refine: a row settled before that level); computed losses are NLLs, never negative. */
export const NOT_RUN = -1;

export interface Progress {
  /** The pass being run (src/score/plan.ts passesOf), and the next batch of it. */
  pass: number;
  nextBatch: number;
}

const STATE_FILE = "state.json";
const LOSSES_FILE = "losses.f64";

const stateSchema = z.object({
  pass: z.number().int().nonnegative(),
  nextBatch: z.number().int().nonnegative(),
  fingerprint: z.string(),
  identity: z.record(z.string(), z.unknown()),
});

type StateFile = z.infer<typeof stateSchema>;

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
  if (foreign.length) throw new UserError(`${dir}: holds files dlc-prune did not write (${foreign.slice(0, 5).join(", ")}); dlc-prune keeps its resume state there: move them, or choose another score.out`);
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
   * Opens the work folder of `out`. With saved progress of the same run and shard it returns that progress
   * and the losses; progress of another run is refused unless `restart`.
   */
  static async open(out: string, record: RunRecord, shard: Shard | null, lossCount: number, restart: boolean): Promise<{ checkpoint: Checkpoint; progress: Progress; losses: Float64Array; resumed: boolean }> {
    const dir = workDirOf(out);
    const fingerprint = fingerprintOf(record, shard);
    const identity = { ...runIdentity(record), shard };
    const checkpoint = new Checkpoint(dir, fingerprint, identity);
    const fresh = { checkpoint, progress: { pass: 0, nextBatch: 0 }, losses: new Float64Array(lossCount).fill(NOT_RUN), resumed: false };
    if (restart) await removeWork(dir);
    // The caller holds score.out's lock: temporary files here are a killed run's.
    await removeStaleTemps(dir, (target) => target === STATE_FILE || target === LOSSES_FILE);
    if (!(await entries(dir)).includes(STATE_FILE)) {
      await ensureWritableDir(dir, "score.out");
      return fresh;
    }
    const unreadable = (why: string) => new UserError(`${join(dir, STATE_FILE)}: the checkpoint is unreadable (${why}); rerun with --restart to start over`);
    const parsed = parseJson(stateSchema, await readFile(join(dir, STATE_FILE), "utf8"));
    if ("why" in parsed) throw unreadable(parsed.why);
    const state = parsed.value;
    if (state.fingerprint !== fingerprint)
      throw new UserError(`${dir}: holds progress of a different run (${describeDifferences(state.identity, identity) || "tool version"}); rerun with --restart to start over`);
    let bytes: Buffer;
    try {
      bytes = await readFile(join(dir, LOSSES_FILE));
    } catch (err) {
      if (isSystemError(err) && err.code === "ENOENT") throw unreadable(`${LOSSES_FILE} is missing`);
      throw err;
    }
    if (bytes.byteLength !== lossCount * 8) throw unreadable(`${LOSSES_FILE} has the wrong size`);
    const losses = new Float64Array(lossCount);
    new Uint8Array(losses.buffer).set(bytes);
    return { checkpoint, progress: { pass: state.pass, nextBatch: state.nextBatch }, losses, resumed: true };
  }

  async save(progress: Progress, losses: Float64Array): Promise<void> {
    await writeFileAtomic(join(this.dir, LOSSES_FILE), new Uint8Array(losses.buffer, losses.byteOffset, losses.byteLength));
    const state: StateFile = { ...progress, fingerprint: this.fingerprint, identity: this.identity };
    await writeFileAtomic(join(this.dir, STATE_FILE), JSON.stringify(state, null, 2));
  }

  async remove(): Promise<void> {
    await removeWork(this.dir);
  }
}
