// Pruned rows as Parquet (parquetjs-lite): the input's columns with their types, values unchanged, plus the
// score columns (dlc, and the score a selection ranks by).
// Lists use Parquet's standard 3-level LIST layout, structs nested groups, and every nullable column is
// OPTIONAL, so DuckDB, pyarrow and Hugging Face datasets read the file as the input was.
import parquet, { type FieldDefinition, type ParquetWriter } from "parquetjs-lite";
import type { ColumnType, Columns } from "../data/columns.js";
import { fieldOf } from "../data/read.js";
import type { ScoreName } from "../scores/file.js";
import { UserError, atPath, isSystemError } from "../util/errors.js";

/** The score columns a kept file adds: dlc always, and the score its selection ranks by (loss0, ifd). */
export type ScoreValues = Partial<Record<ScoreName, number | null>>;
const COMPRESSION = "SNAPPY";

function definition(t: ColumnType): FieldDefinition {
  switch (t.kind) {
    case "primitive":
      return { type: t.type, optional: t.optional, compression: COMPRESSION };
    case "json":
      return { type: "JSON", optional: t.optional, compression: COMPRESSION };
    case "list":
      return { type: "LIST", optional: t.optional, fields: { list: { repeated: true, fields: { element: definition(t.element) } } } };
    case "struct":
      return { optional: t.optional, fields: Object.fromEntries([...t.fields].map(([k, f]) => [k, definition(f)])) };
  }
}

/** A value in the shape parquetjs-lite writes for `t`; undefined for null. (Integers beyond 2^53 never get here: the reader makes their rows bad rows.) */
function shape(v: unknown, t: ColumnType): unknown {
  if (v === null || v === undefined) return undefined;
  switch (t.kind) {
    case "json":
      // In a one-element array so parquetjs-lite does not take a list value for repeated values.
      return [v];
    case "list":
      return { list: (v as unknown[]).map((e) => ({ element: shape(e, t.element) })) };
    case "struct":
      return Object.fromEntries([...t.fields].map(([k, f]) => [k, shape(fieldOf(v as Record<string, unknown>, k), f)]));
    case "primitive":
      if (t.type === "JSON") return [v];
      if (v instanceof Uint8Array) return Buffer.from(v);
      return v;
  }
}

/** Fails before any work if the data cannot be written with the score columns `scores` (checked again when writing). */
export function checkWritable(columns: Columns, file: string, scores: ScoreName[]): void {
  const clash = scores.find((name) => columns.has(name));
  if (clash) throw new UserError(`${file}: already has a column "${clash}"; rename it so the score column can be added`);
  // parquetjs-lite keeps field names as keys of plain objects, where "__proto__" is the prototype.
  const check = (cols: Columns, prefix: string) => {
    for (const [name, t] of cols) {
      if (name === "__proto__") throw new UserError(`${file}: column ${prefix}__proto__ cannot be written by the Parquet writer (parquetjs-lite); rename the field`);
      if (t.kind === "struct") check(t.fields, `${prefix}${name}.`);
      if (t.kind === "list" && t.element.kind === "struct") check(t.element.fields, `${prefix}${name}.element.`);
    }
  };
  check(columns, "");
}

export class ParquetOut {
  /** Rows appended so far. */
  rows = 0;

  private constructor(
    private readonly writer: ParquetWriter,
    private readonly columns: Columns,
    private readonly path: string,
  ) {}

  static async open(path: string, columns: Columns, scores: ScoreName[]): Promise<ParquetOut> {
    const fields = Object.fromEntries([...columns].map(([k, t]) => [k, definition(t)]));
    for (const name of scores) fields[name] = { type: "DOUBLE", optional: true, compression: COMPRESSION };
    // Data page v1: the layout every reader supports.
    const writer = await atPath(path, () => parquet.ParquetWriter.openFile(new parquet.ParquetSchema(fields), path, { useDataPageV2: false }));
    return new ParquetOut(writer, columns, path);
  }

  async append(row: Record<string, unknown>, scores: ScoreValues, where: string): Promise<void> {
    const out = Object.fromEntries([...this.columns].map(([k, t]) => [k, shape(fieldOf(row, k), t)]));
    for (const [name, value] of Object.entries(scores)) if (value !== null && !Number.isNaN(value)) out[name] = value;
    try {
      await atPath(this.path, () => this.writer.appendRow(out));
      this.rows++;
    } catch (err) {
      if (isSystemError(err)) throw err;
      // parquetjs-lite throws strings for values that do not fit the column type.
      throw new UserError(`${where}: cannot be written to Parquet (${err instanceof Error ? err.message : String(err)})`);
    }
  }

  close(): Promise<void> {
    return atPath(this.path, () => this.writer.close());
  }
}
