// The column types of the input rows, so the pruned Parquet keeps every column as it was: taken from a
// Parquet file's schema, or inferred from all JSON rows (strings, integers, floats, booleans, lists,
// nested objects, nulls; a column whose values disagree in type is kept as JSON text).
import type { SchemaTree } from "hyparquet";
import { UserError } from "../util/errors.js";

export type Primitive =
  | "UTF8"
  | "JSON"
  | "BYTE_ARRAY"
  | "BOOLEAN"
  | "INT32"
  | "INT64"
  | "INT_8"
  | "INT_16"
  | "INT_32"
  | "INT_64"
  | "UINT_8"
  | "UINT_16"
  | "UINT_32"
  | "UINT_64"
  | "FLOAT"
  | "DOUBLE"
  | "DATE"
  | "TIMESTAMP_MILLIS"
  | "TIMESTAMP_MICROS";

export type ColumnType =
  | { kind: "primitive"; type: Primitive; optional: boolean }
  | { kind: "list"; element: ColumnType; optional: boolean }
  | { kind: "struct"; fields: Columns; optional: boolean }
  /** Values of mixed JSON types, stored as JSON text. */
  | { kind: "json"; optional: boolean };

export type Columns = Map<string, ColumnType>;

// ---- inference from JSON values ----

/** While inferring, a value seen only as null has no type yet; it becomes text if it never gets one. */
type Inferred = ColumnType | { kind: "null"; optional: true };
const NULL: Inferred = { kind: "null", optional: true };

function typeOfValue(v: unknown): ColumnType | null {
  if (v === null || v === undefined) return null;
  if (typeof v === "string") return { kind: "primitive", type: "UTF8", optional: false };
  if (typeof v === "boolean") return { kind: "primitive", type: "BOOLEAN", optional: false };
  if (typeof v === "number") return { kind: "primitive", type: Number.isSafeInteger(v) ? "INT64" : "DOUBLE", optional: false };
  if (Array.isArray(v)) {
    let element: ColumnType | null = null;
    for (const e of v) {
      const t = typeOfValue(e);
      if (t) element = element ? merge(element, t) : t;
    }
    // Elements are nullable in Parquet's standard list layout; an all-empty list column holds text.
    return { kind: "list", element: { ...(element ?? { kind: "primitive", type: "UTF8", optional: true }), optional: true }, optional: false };
  }
  if (typeof v === "object") {
    const fields: Columns = new Map();
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) fields.set(k, (typeOfValue(x) ?? NULL) as ColumnType);
    return { kind: "struct", fields, optional: false };
  }
  return { kind: "json", optional: false };
}

function merge(a: ColumnType, b: ColumnType): ColumnType {
  const optional = a.optional || b.optional;
  if ((a as Inferred).kind === "null") return { ...b, optional: true };
  if ((b as Inferred).kind === "null") return { ...a, optional: true };
  if (a.kind === "primitive" && b.kind === "primitive") {
    if (a.type === b.type) return { ...a, optional };
    const numbers = new Set(["INT64", "DOUBLE"]);
    if (numbers.has(a.type) && numbers.has(b.type)) return { kind: "primitive", type: "DOUBLE", optional };
  }
  if (a.kind === "list" && b.kind === "list") return { kind: "list", element: merge(a.element, b.element), optional };
  if (a.kind === "struct" && b.kind === "struct") return { kind: "struct", fields: mergeFields(a.fields, b.fields), optional };
  return { kind: "json", optional };
}

/** Fields of both; a field missing on one side is optional. */
function mergeFields(a: Columns, b: Columns): Columns {
  const out: Columns = new Map();
  for (const [k, t] of a) out.set(k, b.has(k) ? merge(t, b.get(k)!) : { ...t, optional: true });
  for (const [k, t] of b) if (!a.has(k)) out.set(k, { ...t, optional: true });
  return out;
}

/**
 * Columns only ever null become optional text; objects that never have a key ({} in every row) become JSON
 * text, since a Parquet group without fields is one that DuckDB refuses and other readers drop.
 */
function settle(columns: Columns): Columns {
  const one = (t: ColumnType): ColumnType => {
    if ((t as Inferred).kind === "null") return { kind: "primitive", type: "UTF8", optional: true };
    if (t.kind === "list") return { ...t, element: one(t.element) };
    if (t.kind === "struct") return t.fields.size ? { ...t, fields: settle(t.fields) } : { kind: "json", optional: t.optional };
    return t;
  };
  return new Map([...columns].map(([k, t]) => [k, one(t)]));
}

/** Accumulates the column types of JSON rows, in order of first appearance. */
export class ColumnInference {
  private columns: Columns | undefined;

  add(row: Record<string, unknown>): void {
    const t = typeOfValue(row) as { fields: Columns };
    this.columns = this.columns ? mergeFields(this.columns, t.fields) : t.fields;
  }

  result(): Columns {
    return settle(this.columns ?? new Map());
  }
}

// ---- from a Parquet schema (hyparquet's schema tree) ----

const CONVERTED: Record<string, Primitive> = {
  UTF8: "UTF8",
  JSON: "JSON",
  INT_8: "INT_8",
  INT_16: "INT_16",
  INT_32: "INT_32",
  INT_64: "INT_64",
  UINT_8: "UINT_8",
  UINT_16: "UINT_16",
  UINT_32: "UINT_32",
  UINT_64: "UINT_64",
  DATE: "DATE",
  TIMESTAMP_MILLIS: "TIMESTAMP_MILLIS",
  TIMESTAMP_MICROS: "TIMESTAMP_MICROS",
};
const PHYSICAL: Record<string, Primitive> = { BOOLEAN: "BOOLEAN", INT32: "INT32", INT64: "INT64", FLOAT: "FLOAT", DOUBLE: "DOUBLE", BYTE_ARRAY: "BYTE_ARRAY" };

function fromSchema(node: SchemaTree, file: string, path: string): ColumnType {
  const e = node.element;
  const optional = e.repetition_type !== "REQUIRED";
  const logical = (e.logical_type as { type?: string } | undefined)?.type;
  if (e.repetition_type === "REPEATED" && path.split(".").length === 1)
    throw new UserError(`${file}: column ${path} is a bare repeated field; only standard LIST columns are supported`);
  if (node.children.length) {
    if (e.converted_type === "LIST" || logical === "LIST") {
      const repeated = node.children[0]!;
      // Standard 3-level list (list / element); a repeated group of one field is the 2-level legacy form.
      const element = repeated.children.length === 1 ? repeated.children[0]! : repeated;
      return { kind: "list", element: { ...fromSchema(element, file, `${path}.element`), optional: true }, optional };
    }
    if (e.converted_type === "MAP" || e.converted_type === "MAP_KEY_VALUE" || logical === "MAP")
      throw new UserError(`${file}: column ${path} is a MAP, which the Parquet writer cannot write`);
    const fields: Columns = new Map(node.children.map((c) => [c.element.name, fromSchema(c, file, `${path}.${c.element.name}`)]));
    return { kind: "struct", fields, optional };
  }
  const stringy = logical === "STRING" ? "UTF8" : logical === "JSON" ? "JSON" : undefined;
  const type = stringy ?? (e.converted_type ? CONVERTED[e.converted_type] : undefined) ?? (logical ? undefined : PHYSICAL[e.type ?? ""]);
  if (!type) throw new UserError(`${file}: column ${path} has type ${e.type}${e.converted_type ? `/${e.converted_type}` : ""}${logical ? `/${logical}` : ""}, which the Parquet writer cannot write`);
  return { kind: "primitive", type, optional };
}

export function columnsFromParquet(schema: SchemaTree, file: string): Columns {
  return new Map(schema.children.map((c) => [c.element.name, fromSchema(c, file, c.element.name)]));
}
