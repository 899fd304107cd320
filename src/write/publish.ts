// The output folder, claimed before any long work and published in one step.
//
// Claim: the folder can be written and holds nothing dlc-prune did not write (a valid manifest's files with
// the bytes it lists, this run's scores files, our temporary files). Anything else makes the run stop with a
// one-line error: a user's folder is refused, never cleaned.
// Publish: every file is first complete under a temporary name; the manifest then lists the old and the new
// bytes ("publishing", with the names being replaced), the files are renamed into place, earlier outputs
// that this run does not write again are removed (each said in the log), and the final manifest lists
// exactly the folder's dlc-prune files. A crash at any point leaves a folder whose every file the manifest on
// disk vouches for, and the same command finishes the job. report.html is renamed before report.json: a
// crash never leaves a report without its page.
// Replace or remove: under the lock, the file is first renamed aside (a name of this process's), then its
// bytes are checked against the manifest. Only a file that is still the one dlc-prune wrote is replaced or
// removed; a file the user changed or wrote meanwhile, even a moment before, goes back and the run stops.
import { link, mkdir, readdir, rename, rm, rmdir, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { UserError, isSystemError } from "../util/errors.js";
import { WRITE_CHECK, ensureWritableDir, sha256File, tempSibling, tempTarget, writeFileAtomic, type TempKind } from "../util/fs.js";
import { Lock } from "../util/lock.js";
import { looksLikeScoresFile } from "../contract/names.js";
import {
  KEPT_FOLDER,
  MANIFEST_FILE,
  REPORT_JSON,
  manifestSchema,
  type CompareManifest,
  type CompareManifestBody,
  type FileEntry,
  type Manifest,
  type ManifestBody,
} from "../contract/manifest.js";
import { readFolderManifest } from "./layout.js";

const OUTPUT_NAME = manifestSchema.shape.files.element.shape.file;
const isOutputName = (name: string) => OUTPUT_NAME.safeParse(name).success;

/**
 * The folder's entries as paths relative to it: a folder named like our kept-rows folders ("flexrand-0.3")
 * stands for its entries ("flexrand-0.3/train.parquet"), so a user's file inside one is seen too.
 */
async function entriesOf(dir: string): Promise<string[]> {
  const names: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory() && KEPT_FOLDER.test(entry.name))
      for (const inner of await readdir(join(dir, entry.name))) names.push(`${entry.name}/${inner}`);
    else names.push(entry.name);
  }
  return names;
}

/**
 * The output a temporary file was to become, or a file moved aside was ("flexrand-0.3/train.parquet"), or
 * undefined for another name.
 */
function tempTargetPath(name: string, kind: TempKind = "tmp"): string | undefined {
  const target = tempTarget(basename(name), kind);
  return target === undefined ? undefined : name.includes("/") ? `${dirname(name)}/${target}` : target;
}

/** sha256 and size of a file, or undefined when it is gone. */
async function entryOf(path: string, file: string): Promise<FileEntry | undefined> {
  try {
    const { size } = await stat(path);
    return { file, sha256: await sha256File(path), bytes: size };
  } catch (err) {
    if (isSystemError(err) && err.code === "ENOENT") return undefined;
    throw err;
  }
}

/** Removes the kept-rows folder of a removed output when it is left empty (rmdir refuses a folder with anything in it). */
async function removeIfEmpty(folder: string, root: string): Promise<void> {
  if (folder === root || !KEPT_FOLDER.test(basename(folder))) return;
  await rmdir(folder).catch(() => {});
}

interface Owned {
  manifest?: Manifest | CompareManifest;
  /** The manifest's entries whose file holds exactly the listed bytes now. */
  entries: FileEntry[];
  /** Outputs a killed publish moved aside, holding bytes the manifest lists for them: to be removed. */
  asides: string[];
}

/** The sha256 values the manifest lists for `file` (a publishing manifest may list two). */
const listedShas = (manifest: Manifest | CompareManifest | undefined, file: string) =>
  new Set((manifest?.files ?? []).filter((f) => f.file === file).map((f) => f.sha256));

/** The folder's lock file (src/util/lock.ts): one run writes a folder at a time. */
const LOCK_FILE = ".dlc-prune.lock";

export class OutputFolder {
  private readonly temps = new Set<string>();
  private readonly madeDirs = new Set<string>();
  private lockHeld: Lock | undefined;

  private constructor(
    readonly dir: string,
    private readonly alsoOurs: (name: string) => boolean,
  ) {}

  /**
   * Makes the folder, checks it can be written and that it holds only dlc-prune's files. `alsoOurs` names the
   * files of this run that may live there besides the manifest's (the scores file, its shards and work folder).
   */
  static async claim(dir: string, alsoOurs: (name: string) => boolean = () => false): Promise<OutputFolder> {
    await ensureWritableDir(dir, "select.out_dir");
    const folder = new OutputFolder(dir, alsoOurs);
    await folder.owned();
    return folder;
  }

  private async owned(): Promise<Owned> {
    const manifest = await readFolderManifest(this.dir);
    const entries: FileEntry[] = [];
    const mismatched: string[] = [];
    for (const listed of manifest?.files ?? []) {
      const now = await entryOf(join(this.dir, listed.file), listed.file);
      if (now?.sha256 === listed.sha256) {
        if (!entries.some((e) => e.file === listed.file)) entries.push(listed);
      } else if (now) mismatched.push(listed.file);
    }
    const matched = new Set(entries.map((e) => e.file));
    const changed = new Set(mismatched.filter((f) => !matched.has(f)));
    const ours = (name: string) => (name === MANIFEST_FILE && !!manifest) || name === LOCK_FILE || matched.has(name) || this.alsoOurs(name);
    const asides: string[] = [];
    const foreign: string[] = [];
    for (const name of await entriesOf(this.dir)) {
      const target = tempTargetPath(name);
      const aside = tempTargetPath(name, "old");
      // Our temporary files (an interrupted run's) are named after what they were to become.
      if (target !== undefined) {
        if (!(isOutputName(target) || target === MANIFEST_FILE || target === LOCK_FILE || target === WRITE_CHECK || this.alsoOurs(target)))
          foreign.push(name);
      } else if (aside !== undefined) {
        // A lock being taken over (src/util/lock.ts), or an output a killed publish moved aside: ours only with the bytes listed for it.
        if (aside === LOCK_FILE || this.alsoOurs(aside)) continue;
        if (isOutputName(aside) && listedShas(manifest, aside).has(await sha256File(join(this.dir, name)))) asides.push(name);
        else foreign.push(name);
      } else if (!ours(name)) foreign.push(name);
    }
    if (foreign.length) {
      const changedNow = foreign.filter((f) => changed.has(f)).sort();
      const others = foreign.filter((f) => !changed.has(f)).sort();
      const shown = others.slice(0, 5).join(", ") + (others.length > 5 ? ` and ${others.length - 5} more` : "");
      // A scores file in a selection's folder: score.out pointed there (a folder dlc-prune replaces as a whole).
      const scores = others.find((f) => f.includes("/") && KEPT_FOLDER.test(dirname(f)) && looksLikeScoresFile(basename(f)));
      const parts = [
        others.length ? `holds files dlc-prune did not write (${shown})` : "",
        changedNow.length ? `${changedNow.join(", ")} changed since dlc-prune wrote ${changedNow.length > 1 ? "them" : "it"}` : "",
        scores
          ? `${scores} looks like a scores file: score.out must not point inside a selection folder (${dirname(scores)}/ holds only the kept rows); move it out of ${join(this.dir, dirname(scores))} and set score.out to a path outside the selection folders (e.g. ${join(this.dir, basename(scores))})`
          : "",
      ];
      throw new UserError(
        `select.out_dir ${this.dir}: ${parts.filter(Boolean).join("; ")}; dlc-prune never replaces or deletes such files: choose an empty or new folder`,
      );
    }
    return { manifest, entries, asides };
  }

  /**
   * Takes the folder's lock (a second run writing it is refused, naming the first) and removes the temporary
   * files an interrupted run left, saying so. Held until `release`.
   */
  async lock(log: (line: string) => void): Promise<void> {
    this.lockHeld = await Lock.acquire(join(this.dir, LOCK_FILE), `select.out_dir ${this.dir}`, log);
    // Checked again under the lock: what the claim saw may have changed since.
    const { asides } = await this.owned();
    const stale = (await entriesOf(this.dir)).filter((name) => {
      const target = tempTargetPath(name);
      return target !== undefined && (isOutputName(target) || target === MANIFEST_FILE);
    });
    for (const name of [...stale, ...asides]) await rm(join(this.dir, name), { force: true });
    const left = [...stale, ...asides];
    if (left.length)
      log(`removed ${left.length} temporary file${left.length > 1 ? "s" : ""} an interrupted run left in ${this.dir} (${left.join(", ")})`);
  }

  async release(): Promise<void> {
    await this.lockHeld?.release();
    this.lockHeld = undefined;
  }

  /** A temporary path in the folder for the output `name` (its own folder made), removed by `discard` unless published. */
  async temp(name: string): Promise<string> {
    const path = tempSibling(join(this.dir, name));
    const made = await mkdir(dirname(path), { recursive: true });
    if (made) this.madeDirs.add(made);
    this.temps.add(path);
    return path;
  }

  /** Removes the temporary files of an unpublished attempt. */
  async discard(): Promise<void> {
    await Promise.all([...this.temps].map((t) => rm(t, { force: true })));
    // The kept-rows folders this attempt made, when nothing else is in them.
    await Promise.all([...this.madeDirs].map((d) => rmdir(d).catch(() => {})));
    this.temps.clear();
    this.madeDirs.clear();
  }

  /**
   * Moves the output `name` aside and returns where, when it holds bytes of `accepted` (what the manifest
   * lists for it); undefined when there is no such file. A file with other bytes goes back and this fails.
   */
  private async moveAside(name: string, accepted: Set<string>): Promise<string | undefined> {
    const path = join(this.dir, name);
    const aside = tempSibling(path, "old");
    try {
      await rename(path, aside);
    } catch (err) {
      if (isSystemError(err) && err.code === "ENOENT") return undefined;
      throw err;
    }
    if (accepted.has(await sha256File(aside))) return aside;
    let where = "";
    try {
      await link(aside, path); // never over a file that appeared meanwhile
      await rm(aside);
    } catch (err) {
      if (!isSystemError(err) || err.code !== "EEXIST") throw err;
      where = ` (it is now ${aside}, as another file took its name)`;
    }
    throw new UserError(
      `select.out_dir ${this.dir}: ${name} changed while this run published its outputs (its bytes are not those dlc-prune wrote)${where}; dlc-prune never replaces or deletes such a file: move it out of the folder, then rerun`,
    );
  }

  /**
   * Renames the written files (name -> temporary path) into place with a manifest of `body`. Earlier outputs
   * are kept where `keep` says so, else removed and named through `log`.
   */
  async publish<B extends ManifestBody | CompareManifestBody>(
    written: Map<string, string>,
    body: B,
    opts: { keep?: (name: string) => boolean; log: (line: string) => void },
  ): Promise<B & { state: "complete"; files: FileEntry[] }> {
    const { entries: before, manifest: onDisk } = await this.owned();
    const { replacing: _replacing, ...clean } = body as B & { replacing?: string[] };
    const fresh: FileEntry[] = [];
    for (const [name, temp] of written) fresh.push((await entryOf(temp, name))!);
    const kept = before.filter((e) => !written.has(e.file) && opts.keep?.(e.file));
    const stale = before.filter((e) => !written.has(e.file) && !opts.keep?.(e.file));
    const accepted = (file: string) => new Set(before.filter((e) => e.file === file).map((e) => e.sha256));
    const path = join(this.dir, MANIFEST_FILE);
    await writeFileAtomic(
      path,
      JSON.stringify({ ...clean, state: "publishing", replacing: [...written.keys()], files: [...before, ...fresh] }, null, 2) + "\n",
    );
    // report.json last: its page is in place first.
    const order = [...written].sort(([a], [b]) => Number(a === REPORT_JSON) - Number(b === REPORT_JSON));
    for (const [name, temp] of order) {
      const aside = await this.moveAside(name, accepted(name));
      await rename(temp, join(this.dir, name));
      this.temps.delete(temp);
      if (aside) await rm(aside);
    }
    for (const e of stale) {
      const aside = await this.moveAside(e.file, accepted(e.file));
      if (aside) await rm(aside);
      await removeIfEmpty(dirname(join(this.dir, e.file)), this.dir);
      opts.log(`removed ${join(this.dir, e.file)}: an output of an earlier run that this run does not write`);
    }
    const files = [...fresh, ...kept].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
    // The folders of outputs an interrupted publish removed, left empty.
    const dirs = new Set(
      (onDisk?.files ?? []).map((e) => dirname(e.file)).filter((d) => d !== "." && !files.some((f) => dirname(f.file) === d)),
    );
    for (const d of dirs) await removeIfEmpty(join(this.dir, d), this.dir);
    const manifest = { ...clean, state: "complete" as const, files } as B & { state: "complete"; files: FileEntry[] };
    await writeFileAtomic(path, JSON.stringify(manifest, null, 2) + "\n");
    return manifest;
  }
}
