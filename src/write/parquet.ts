// Pruned rows as Parquet (parquetjs-lite): the input's columns with their types, values unchanged, plus dlc.
// Lists use Parquet's standard 3-level LIST layout, structs nested groups, and every nullable column is
// OPTIONAL, so DuckDB, pyarrow and Hugging Face datasets read the file as the input was.
import parquet, { type FieldDefinition, type ParquetWriter } from "parquetjs-lite";
import type { ColumnType, Columns } from "../data/columns.js";
import { UserError } from "../util/errors.js";

export const DLC_COLUMN = "dlc";
const COMPRESSION = "SNAPPY";
const INT64_TYPES = new Set(["INT64", "INT_64", "UINT_64", "UINT_32"]);

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

/** A value in the shape parquetjs-lite writes for `t`; undefined for null. */
function shape(v: unknown, t: ColumnType, where: () => string): unknown {
  if (v === null || v === undefined) return undefined;
  switch (t.kind) {
    case "json":
      // In a one-element array so parquetjs-lite does not take a list value for repeated values.
      return [v];
    case "list":
      return { list: (v as unknown[]).map((e) => ({ element: shape(e, t.element, where) })) };
    case "struct": {
      const o = v as Record<string, unknown>;
      return Object.fromEntries([...t.fields].map(([k, f]) => [k, shape(o[k], f, where)]));
    }
    case "primitive":
      if (t.type === "JSON") return [v];
      // parquetjs-lite goes through a JS number for 64-bit integers: refuse what it would round.
      if (typeof v === "bigint" && INT64_TYPES.has(t.type) && (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)))
        throw new UserError(`${where()}: the integer ${v} is beyond 2^53, which the Parquet writer cannot store exactly`);
      if (v instanceof Uint8Array) return Buffer.from(v);
      return v;
  }
}

/** Fails before any work if the data cannot be written with its scores (checked again when writing). */
export function checkWritable(columns: Columns, file: string): void {
  if (columns.has(DLC_COLUMN)) throw new UserError(`${file}: already has a column "${DLC_COLUMN}"; rename it so the score column can be added`);
}

export class ParquetOut {
  /** Rows appended so far. */
  rows = 0;

  private constructor(
    private readonly writer: ParquetWriter,
    private readonly columns: Columns,
  ) {}

  static async open(path: string, columns: Columns): Promise<ParquetOut> {
    const fields = Object.fromEntries([...columns].map(([k, t]) => [k, definition(t)]));
    fields[DLC_COLUMN] = { type: "DOUBLE", optional: true, compression: COMPRESSION };
    // Data page v1: the layout every reader supports.
    const writer = await parquet.ParquetWriter.openFile(new parquet.ParquetSchema(fields), path, { useDataPageV2: false });
    return new ParquetOut(writer, columns);
  }

  async append(row: Record<string, unknown>, dlc: number | null, where: string): Promise<void> {
    const out: Record<string, unknown> = {};
    for (const [k, t] of this.columns) out[k] = shape(row[k], t, () => `${where}, column ${k}`);
    if (dlc !== null) out[DLC_COLUMN] = dlc;
    try {
      await this.writer.appendRow(out);
      this.rows++;
    } catch (err) {
      // parquetjs-lite throws strings for values that do not fit the column type.
      throw new UserError(`${where}: cannot be written to Parquet (${err instanceof Error ? err.message : String(err)})`);
    }
  }

  close(): Promise<void> {
    return this.writer.close();
  }
}
