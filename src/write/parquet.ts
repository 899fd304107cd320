// Pruned rows as Parquet (hyparquet-writer, by the author of the hyparquet reader): the input's columns with
// their types, values unchanged, plus the score columns (dlc, the score a selection ranks by, and for refined
// scores dlc_exact and dlc_sd).
// A Parquet input's leaf columns are written with the input's own physical type and annotations (a timestamp
// keeps its unit and time zone, a column its nullability); JSON input's with the types inferred from it
// (an integer as INT64, a number written with a fraction as DOUBLE). Lists use Parquet's standard 3-level
// LIST layout and structs nested groups, so DuckDB, pyarrow and Hugging Face datasets read the file as the
// input was. (parquetjs-lite, used before, has no timestamp unit but milliseconds, no time zone and no
// nanoseconds, and took "__proto__" field names for the prototype.)
import { ParquetWriter, fileWriter, type SchemaElement, type Writer } from "hyparquet-writer";
import { stringify as stringifyLossless } from "lossless-json";
import type { ColumnType, Columns, Leaf } from "../data/columns.js";
import { JsonText, Timestamp, fieldOf } from "../data/read.js";
import { UserError, atPath, displayPath, isSystemError } from "../util/errors.js";

/** A score column a kept file adds (write/write.ts says which): its name and Parquet type. */
export interface ScoreField {
  name: string;
  type: "DOUBLE" | "BOOLEAN" | "INT64" | "STRING";
}

/** A row's values of the score columns, by name: NaN and null are written as null. */
export type ScoreValues = Record<string, number | boolean | string | null>;

/** Rows per row group, and the text a row group may hold before it is written (bounds memory with long rows). */
const GROUP_ROWS = 1000;
const GROUP_CHARS = 64 * 1024 * 1024;

const encoder = new TextEncoder();
const isJsonLeaf = (leaf: Leaf) => leaf.converted_type === "JSON" || (leaf.logical_type as { type?: string } | undefined)?.type === "JSON";

/**
 * An INTEGER logical type as its converted type (INTEGER(8, signed) is INT_8: the same type, by the Parquet
 * spec): hyparquet-writer writes the logical type's bit width as a thrift i32 where readers expect an i8, and
 * pyarrow then cannot read the footer.
 */
function integerAsConverted(leaf: Leaf): Leaf {
  const logical = leaf.logical_type as { type: string; bitWidth?: number; isSigned?: boolean } | undefined;
  if (logical?.type !== "INTEGER") return leaf;
  const { logical_type: _l, ...rest } = leaf;
  return {
    ...rest,
    converted_type: leaf.converted_type ?? (`${logical.isSigned ? "INT" : "UINT"}_${logical.bitWidth}` as Leaf["converted_type"]),
  };
}

/**
 * The Parquet schema of `columns` (depth first, after the root). JSON columns are written from their text,
 * as bytes: their annotations are set aside (`deferred`) while writing, since hyparquet-writer would
 * serialize a JSON value again (1.0 as 1), and put back for the footer.
 */
function schemaOf(
  columns: Columns,
  scores: ScoreField[],
): { schema: SchemaElement[]; deferred: [SchemaElement, Partial<SchemaElement>][] } {
  const schema: SchemaElement[] = [{ name: "root", num_children: columns.size + scores.length }];
  const deferred: [SchemaElement, Partial<SchemaElement>][] = [];
  const add = (name: string, t: ColumnType) => {
    const repetition_type = t.optional ? "OPTIONAL" : "REQUIRED";
    switch (t.kind) {
      case "primitive": {
        const { converted_type, logical_type, ...physical } = integerAsConverted(t.leaf);
        // (hyparquet-writer has its own copy of hyparquet's types.)
        const e = { name, repetition_type, ...physical } as SchemaElement;
        if (isJsonLeaf(t.leaf)) deferred.push([e, { converted_type, logical_type } as Partial<SchemaElement>]);
        else Object.assign(e, converted_type && { converted_type }, logical_type && { logical_type });
        schema.push(e);
        return;
      }
      case "json": {
        const e: SchemaElement = { name, repetition_type, type: "BYTE_ARRAY" };
        deferred.push([e, { converted_type: "JSON" }]);
        schema.push(e);
        return;
      }
      case "list":
        schema.push(
          { name, repetition_type, converted_type: "LIST", num_children: 1 },
          { name: "list", repetition_type: "REPEATED", num_children: 1 },
        );
        add("element", t.element);
        return;
      case "struct":
        schema.push({ name, repetition_type, num_children: t.fields.size });
        for (const [k, f] of t.fields) add(k, f);
    }
  };
  for (const [name, t] of columns) add(name, t);
  for (const { name, type } of scores)
    schema.push(
      type === "STRING"
        ? { name, type: "BYTE_ARRAY", converted_type: "UTF8", repetition_type: "OPTIONAL" }
        : { name, type, repetition_type: "OPTIONAL" },
    );
  return { schema, deferred };
}

/**
 * A value as hyparquet-writer takes it for `t`: null for null, lists as arrays, structs as objects without a
 * prototype (a field may be named "constructor"), INT64 as bigint, timestamps as their stored integer, JSON
 * as its text's bytes. `exact`: the value's lossless-json parse where the reader made one (numbers with
 * their text, for JSON text that keeps 1.0).
 */
function shape(v: unknown, t: ColumnType, exact: unknown, size: { chars: number }): unknown {
  if (v === null || v === undefined) return null;
  switch (t.kind) {
    case "json": {
      const text = exact !== undefined ? stringifyLossless(exact)! : JSON.stringify(v);
      size.chars += text.length;
      return encoder.encode(text);
    }
    case "list":
      return (v as unknown[]).map((e, i) => shape(e, t.element, (exact as unknown[] | undefined)?.[i], size));
    case "struct": {
      const out = Object.create(null) as Record<string, unknown>;
      for (const [k, f] of t.fields)
        out[k] = shape(
          fieldOf(v as Record<string, unknown>, k),
          f,
          exact === undefined ? undefined : fieldOf(exact as Record<string, unknown>, k),
          size,
        );
      return out;
    }
    case "primitive":
      if (v instanceof Timestamp) return v.raw;
      if (v instanceof JsonText) {
        size.chars += v.text.length;
        return encoder.encode(v.text);
      }
      if (typeof v === "string") {
        size.chars += v.length;
        return isJsonLeaf(t.leaf) ? encoder.encode(v) : v;
      }
      if (v instanceof Uint8Array) size.chars += v.byteLength;
      if (typeof v === "number" && t.leaf.type === "INT64") return BigInt(v);
      return v;
  }
}

/** Fails before any work if the data cannot be written with the score columns `scores` (checked again when writing). */
export function checkWritable(columns: Columns, file: string, scores: string[]): void {
  const clash = scores.find((name) => columns.has(name));
  if (clash) throw new UserError(`${file}: already has a column "${clash}"; rename it so the score column can be added`);
  // Rows are JavaScript objects on their way through dlc-prune (and through the readers other tools use),
  // where "__proto__" is the prototype, not a field.
  const check = (t: ColumnType, path: string) => {
    if (t.kind === "list") check(t.element, `${path}.element`);
    if (t.kind === "struct") for (const [name, f] of t.fields) visit(name, f, `${path}.`);
  };
  const visit = (name: string, t: ColumnType, prefix: string) => {
    if (name === "__proto__")
      throw new UserError(
        `${file}: column ${prefix}__proto__ cannot be written (the name is JavaScript's prototype key); rename the field`,
      );
    check(t, `${prefix}${name}`);
  };
  for (const [name, t] of columns) visit(name, t, "");
}

export class ParquetOut {
  /** Rows appended so far. */
  rows = 0;
  private group: unknown[][];
  private groupChars = 0;
  private readonly names: string[];

  private constructor(
    private readonly writer: ParquetWriter,
    private readonly deferred: [SchemaElement, Partial<SchemaElement>][],
    private readonly columns: Columns,
    private readonly scores: ScoreField[],
    private readonly path: string,
  ) {
    this.names = [...columns.keys(), ...scores.map((f) => f.name)];
    this.group = this.names.map(() => []);
  }

  static async open(path: string, columns: Columns, scores: ScoreField[]): Promise<ParquetOut> {
    const { schema, deferred } = schemaOf(columns, scores);
    const writer = await atPath(path, async () => new ParquetWriter({ writer: fileWriter(path) as Writer, schema, codec: "SNAPPY" }));
    return new ParquetOut(writer, deferred, columns, scores, path);
  }

  /** `exact`: the row's lossless-json parse, where the reader made one. */
  async append(row: Record<string, unknown>, exact: unknown, scores: ScoreValues, where: string): Promise<void> {
    const size = { chars: 0 };
    let c = 0;
    for (const [k, t] of this.columns)
      this.group[c++]!.push(
        shape(fieldOf(row, k), t, exact === undefined ? undefined : fieldOf(exact as Record<string, unknown>, k), size),
      );
    for (const { name, type } of this.scores) {
      const value = scores[name];
      this.group[c++]!.push(
        value === null || value === undefined || Number.isNaN(value) ? null : type === "INT64" ? BigInt(value as number) : value,
      );
    }
    this.groupChars += size.chars;
    if (this.group[0]!.length >= GROUP_ROWS || this.groupChars >= GROUP_CHARS) await this.flush(where);
    this.rows++;
  }

  /** Writes the rows held as one row group. */
  private async flush(where: string): Promise<void> {
    const n = this.group[0]?.length ?? 0;
    if (!n) return;
    const columnData = this.names.map((name, i) => ({ name, data: this.group[i]! }));
    this.group = this.names.map(() => []);
    this.groupChars = 0;
    try {
      await atPath(this.path, async () => this.writer.write({ columnData, rowGroupSize: n }));
    } catch (err) {
      if (isSystemError(err)) throw err;
      throw new UserError(`${displayPath(this.path)}: the rows up to ${where} cannot be written to Parquet (${(err as Error).message})`);
    }
  }

  async close(): Promise<void> {
    await this.flush("the last row");
    for (const [e, annotations] of this.deferred)
      Object.assign(e, Object.fromEntries(Object.entries(annotations).filter(([, v]) => v !== undefined)));
    await atPath(this.path, async () => this.writer.finish());
  }
}
