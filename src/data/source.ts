// One data file as the stages read it: its rows (streamed, as often as a stage needs them), its format (the
// configured one, or detected once from the first row that parses), and its sha256, computed while the first
// whole pass streams a JSON or JSONL file (Parquet, which is read by byte ranges, is hashed on its own).
import { createHash } from "node:crypto";
import type { Config } from "../config/schema.js";
import { sha256File } from "../util/fs.js";
import { resolveFormat, type ResolvedFormat } from "./formats.js";
import { dataKind, readRows, type RawRow, type RowValue } from "./read.js";

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

  /** Every row, in order (those `only` accepts). */
  async *rows(): AsyncGenerator<RawRow> {
    const hash = this.sha || dataKind(this.path) === "parquet" ? undefined : createHash("sha256");
    for await (const row of readRows(this.path, hash && ((chunk) => hash.update(chunk)))) if (!this.only || this.only(row.row)) yield row;
    if (hash) this.sha = hash.digest("hex");
  }

  /** data.format, or (auto) the format the first row that parses shows; `first` is that row. */
  formatOf(first: RowValue): ResolvedFormat {
    return (this.resolved ??= resolveFormat(this.config.format, this.config.fields, first, this.path));
  }

  async sha256(): Promise<string> {
    return (this.sha ??= await sha256File(this.path));
  }
}
