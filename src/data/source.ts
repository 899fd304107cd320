// One data file as the stages read it: its rows (streamed, as often as a stage needs them), its format (the
// configured one, or detected once from the first row that parses), and its sha256.
// Every whole pass hashes the bytes it reads; a pass that read other bytes than the first (the file was
// replaced, rewritten or grown while the run went on) ends in an error, so no output mixes two versions
// of the data: scores of one file never go out with the rows of another.
import { createHash } from "node:crypto";
import type { Config } from "../config/schema.js";
import { UserError } from "../util/errors.js";
import { sha256File } from "../util/fs.js";
import { resolveFormat, type ResolvedFormat } from "./formats.js";
import { readRows, type RawRow, type RowValue } from "./read.js";

/** The data file is not the one the run began with. */
export function changedData(path: string, was: string, now: string, what = "since dlc-prune first read it"): UserError {
  return new UserError(
    `${path}: changed ${what} (sha256 ${was.slice(0, 12)} then, ${now.slice(0, 12)} now): stopped, and nothing was published, so no output mixes two versions of it; rerun once the file no longer changes`,
  );
}

export class DataSource {
  private sha: string | undefined;
  private resolved: ResolvedFormat | undefined;

  /** `only`: the rows to read (a slice to try a recipe on: `estimate --limit / --sample`); default all. */
  constructor(
    readonly config: Config["data"],
    private readonly only?: (row: number) => boolean,
  ) {}

  get path(): string {
    return this.config.path;
  }

  /** Every row, in order (those `only` accepts); a pass over bytes other than the first pass's throws at its end. */
  async *rows(): AsyncGenerator<RawRow> {
    const hash = createHash("sha256");
    let rows = 0;
    let firstBad: RawRow | undefined;
    let readable = false;
    for await (const row of readRows(this.path, (chunk) => hash.update(chunk))) {
      rows++;
      if (row.value) readable = true;
      else firstBad ??= row;
      if (!this.only || this.only(row.row)) yield row;
    }
    const sha = hash.digest("hex");
    if (this.sha === undefined) this.sha = sha;
    else if (sha !== this.sha) throw changedData(this.path, this.sha, sha, "while dlc-prune was reading it");
    if (rows && !readable)
      throw new UserError(
        `${this.path}: no row could be read: all ${rows} rows are bad (the first, ${firstBad!.where}: ${firstBad!.error}); fix the file or check data.path`,
      );
  }

  /** The same file, read for the rows `only` accepts; its passes must read the bytes this source's first pass read. */
  slice(only: (row: number) => boolean): DataSource {
    const s = new DataSource(this.config, only);
    s.sha = this.sha;
    s.resolved = this.resolved;
    return s;
  }

  /** data.format, or (auto) the format the first row that parses shows; `first` is that row. */
  formatOf(first: RowValue): ResolvedFormat {
    return (this.resolved ??= resolveFormat(this.config.format, this.config.fields, first, this.path));
  }

  /** The sha256 of the bytes the first pass read (or of the file now, before any pass). */
  async sha256(): Promise<string> {
    return (this.sha ??= await sha256File(this.path));
  }
}
