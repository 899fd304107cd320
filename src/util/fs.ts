import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readFile, readdir, rename, rm, rmdir, stat, writeFile, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { UserError, atPath, isSystemError, readingFile, systemErrorReason } from "./errors.js";

/**
 * The kinds of name tempSibling makes: "tmp", a file being written, to be renamed into place; "old", a file
 * moved aside to be checked before it is removed (an output being replaced, a stale lock being taken over).
 */
export type TempKind = "tmp" | "old";

/** A unique name beside `path`, so a later rename is atomic (same filesystem); it names this process. */
export function tempSibling(path: string, kind: TempKind = "tmp"): string {
  return join(dirname(path), `.${basename(path)}.${kind}-${process.pid}-${randomBytes(4).toString("hex")}`);
}

/** Whether process `pid` runs on this host (one of another user's counts: kill(0) says EPERM). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes the names tempSibling made beside `path` (of `kinds`) whose process is gone: what a killed writer
 * left. A live process's are kept (it may be about to rename them). Returns their names.
 */
export async function removeDeadTemps(path: string, kinds: TempKind[] = ["tmp"]): Promise<string[]> {
  const dir = dirname(path);
  const dead = (await readdir(dir).catch(() => [] as string[])).filter((name) => {
    const m = tempNameParts(name);
    return m !== undefined && kinds.includes(m.kind) && m.target === basename(path) && !processAlive(m.pid);
  });
  for (const name of dead) await rm(join(dir, name), { force: true });
  return dead;
}

/**
 * Removes the temporary files in `dir` that stand for a name `ours` accepts: files a killed run left behind.
 * The caller holds the lock of what they belong to, so no live run is writing them. Returns their names.
 */
export async function removeStaleTemps(dir: string, ours: (target: string) => boolean): Promise<string[]> {
  const stale = (await readdir(dir).catch(() => [] as string[])).filter((name) => {
    const target = tempTarget(name);
    return target !== undefined && ours(target);
  });
  for (const name of stale) await rm(join(dir, name), { force: true });
  return stale;
}

/** The parts of a name of tempSibling's: the name it stands for, its kind and its process. */
function tempNameParts(name: string): { target: string; kind: TempKind; pid: number } | undefined {
  const m = /^\.(.+)\.(tmp|old)-(\d+)-[0-9a-f]{8}$/.exec(name);
  return m ? { target: m[1]!, kind: m[2] as TempKind, pid: Number(m[3]) } : undefined;
}

/** The name a temporary name of tempSibling's (of `kind`) stands for, or undefined when `name` is not one. */
export function tempTarget(name: string, kind: TempKind = "tmp"): string | undefined {
  const parts = tempNameParts(name);
  return parts?.kind === kind ? parts.target : undefined;
}

/** The name of the empty file ensureWritableDir creates and removes: other processes may see it meanwhile. */
export const WRITE_CHECK = "dlc-prune-write-check";

/**
 * Makes `dir` (and its parents) and checks that files can be created in it, before any long work: a folder
 * that cannot be created or written is a one-line error naming the config key and `path` (the output in
 * `dir`), not a failure after the scoring stage.
 */
export async function ensureWritableDir(dir: string, key: string, path = dir): Promise<void> {
  try {
    await makeDir(dir);
    if (!(await stat(dir)).isDirectory()) throw Object.assign(new Error(dir), { code: "ENOTDIR" });
    const probe = tempSibling(join(dir, WRITE_CHECK));
    await writeFile(probe, "");
    await rm(probe, { force: true }); // gone already if a run on another host took it for a killed run's (below)
    // A run killed between the two lines above left its probe.
    await removeDeadTemps(join(dir, WRITE_CHECK));
  } catch (err) {
    if (!isSystemError(err)) throw err;
    const reason =
      err.code === "EEXIST" || err.code === "ENOTDIR"
        ? "exists and is not a folder (or a part of its path is a file)"
        : systemErrorReason(err);
    throw new UserError(`${key} ${path}: cannot write ${path === dir ? "there" : `in ${dir}`}: ${reason}`);
  }
}

/** mkdir -p, with the real reason: Node's recursive mkdir says ENOENT where a parent is read-only. */
async function makeDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    if (!isSystemError(err) || err.code !== "ENOENT" || dirname(dir) === dir) throw err;
    await makeDir(dirname(dir));
    await mkdir(dir).catch((e: unknown) => {
      if (!isSystemError(e) || e.code !== "EEXIST") throw e;
    });
  }
}

/** Writes a file under a temporary name and renames it into place: readers never see half a file. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempSibling(path);
  try {
    await atPath(tmp, () => writeFile(tmp, data));
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  // What a writer of `path` killed before its rename left (callers hold the lock of what they write).
  await removeDeadTemps(path);
}

/**
 * Text into a new file through awaited, buffered writes: an error such as a full disk rejects the write or
 * the close, never escapes as an unhandled stream event.
 */
export class TextFileWriter {
  private chunks: string[] = [];
  private size = 0;

  private constructor(
    private readonly handle: FileHandle,
    private readonly path: string,
  ) {}

  static async create(path: string): Promise<TextFileWriter> {
    return new TextFileWriter(await open(path, "wx"), path);
  }

  async write(text: string): Promise<void> {
    this.chunks.push(text);
    this.size += text.length;
    if (this.size >= 1 << 16) await this.flush();
  }

  private async flush(): Promise<void> {
    const data = this.chunks.join("");
    this.chunks = [];
    this.size = 0;
    if (data) await atPath(this.path, () => this.handle.writeFile(data));
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.handle.close();
    }
  }
}

/** Fails unless `dir` is missing or an empty directory (we never write into someone's files). */
export async function assertEmptyOrMissingDir(dir: string): Promise<void> {
  let entries: string[];
  try {
    const s = await stat(dir);
    if (!s.isDirectory()) throw new UserError(`${dir}: exists and is not a directory`);
    entries = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  if (entries.length > 0) throw new UserError(`${dir}: output folder is not empty (${entries.length} entries); choose a new folder`);
}

/**
 * Builds a folder under a temporary sibling name and renames it to `dir` when `build` succeeds;
 * on failure nothing is left behind. `dir` must be missing or empty, and stay so: if another process
 * fills it meanwhile, its files are kept and this fails.
 */
export async function buildDirAtomic(dir: string, build: (tmpDir: string) => Promise<void>): Promise<void> {
  await assertEmptyOrMissingDir(dir);
  await mkdir(dirname(dir), { recursive: true });
  const tmp = tempSibling(dir);
  await mkdir(tmp);
  try {
    await build(tmp);
    await rmdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw err; // ENOTEMPTY: someone else's folder now
    });
    await rename(tmp, dir);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOTEMPTY" || code === "EEXIST") throw new UserError(`${dir}: was filled by another process while this one built it`);
    throw err;
  }
}

/** "key: a -> b; a.b: c -> d" for the (nested) keys whose values differ: says why two runs are not the same run. */
export function describeDifferences(a: Record<string, unknown>, b: Record<string, unknown>, prefix = ""): string {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  const short = (v: unknown) => {
    const s = JSON.stringify(v);
    return s && s.length > 40 ? `${s.slice(0, 37)}...` : s;
  };
  return [...new Set([...Object.keys(a), ...Object.keys(b)])]
    .filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]))
    .map((k) =>
      isObject(a[k]) && isObject(b[k])
        ? describeDifferences(a[k], b[k], `${prefix}${k}.`)
        : `${prefix}${k}: ${short(a[k])} -> ${short(b[k])}`,
    )
    .join("; ");
}

/** Hex sha256 of a file, streamed (data files can be large). */
export async function sha256File(path: string): Promise<string> {
  return readingFile(path, async () => {
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    return hash.digest("hex");
  });
}

export function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

/** A text file's contents, or undefined when there is no such file. */
export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if (isSystemError(err) && err.code === "ENOENT") return undefined;
    throw err;
  }
}

/** True when `path` exists (file or folder). */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
