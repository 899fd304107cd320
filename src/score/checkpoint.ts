// Resume after a crash: progress (level, next batch, the losses so far) is saved beside the output in
// `<out>.work/`, each file written whole and renamed. Losses are saved before the state that points past
// them, so a crash at any moment leaves a state whose losses are on disk.
import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { UserError } from "../util/errors.js";
import { describeDifferences, exists, writeFileAtomic } from "../util/fs.js";

export interface Progress {
  /** The level being scored, and the next batch of it to score. */
  level: number;
  nextBatch: number;
}

interface StateFile extends Progress {
  fingerprint: string;
  identity: Record<string, unknown>;
}

export function workDirOf(out: string): string {
  return `${out}.work`;
}

export class Checkpoint {
  private constructor(
    readonly dir: string,
    private readonly fingerprint: string,
    private readonly identity: Record<string, unknown>,
  ) {}

  /**
   * Opens the work folder of `out`. With saved progress of the same run (same fingerprint) it returns that
   * progress and the losses; progress of another run is refused unless `restart`.
   */
  static async open(out: string, fingerprint: string, identity: Record<string, unknown>, lossCount: number, restart: boolean): Promise<{ checkpoint: Checkpoint; progress: Progress; losses: Float64Array; resumed: boolean }> {
    const dir = workDirOf(out);
    const checkpoint = new Checkpoint(dir, fingerprint, identity);
    const fresh = { level: 0, nextBatch: 0 };
    if (restart) await rm(dir, { recursive: true, force: true });
    if (!(await exists(join(dir, "state.json")))) {
      await mkdir(dir, { recursive: true });
      return { checkpoint, progress: fresh, losses: new Float64Array(lossCount), resumed: false };
    }
    const state = JSON.parse(await readFile(join(dir, "state.json"), "utf8")) as StateFile;
    if (state.fingerprint !== fingerprint)
      throw new UserError(`${dir}: holds progress of a different run (${describeDifferences(state.identity, identity) || "tool version"}); rerun with --restart to start over`);
    const bytes = await readFile(join(dir, "losses.f64"));
    if (bytes.byteLength !== lossCount * 8) throw new UserError(`${dir}/losses.f64: wrong size; rerun with --restart`);
    const losses = new Float64Array(lossCount);
    new Uint8Array(losses.buffer).set(bytes);
    return { checkpoint, progress: { level: state.level, nextBatch: state.nextBatch }, losses, resumed: true };
  }

  async save(progress: Progress, losses: Float64Array): Promise<void> {
    await writeFileAtomic(join(this.dir, "losses.f64"), new Uint8Array(losses.buffer, losses.byteOffset, losses.byteLength));
    const state: StateFile = { ...progress, fingerprint: this.fingerprint, identity: this.identity };
    await writeFileAtomic(join(this.dir, "state.json"), JSON.stringify(state, null, 2));
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
