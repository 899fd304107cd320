// The column types of the input rows, so the pruned Parquet keeps every column as it was: taken from a
// Parquet file's schema (each leaf's physical type and annotations as the input has them: a timestamp keeps
// its unit and time zone, a column its nullability), or inferred from all JSON rows (strings, integers, floats
// as written, booleans, lists, nested objects, nulls; a column whose values disagree in type is kept as JSON
// text). A Parquet type whose values cannot be carried to the output exactly is refused, by name.
import type { SchemaElement, SchemaTree } from "hyparquet";
import { isInteger, isLosslessNumber } from "lossless-json";
import { UserError } from "../util/errors.js";

/** A leaf column's Parquet type: the physical type and its annotations. */
export type Leaf = Pick<SchemaElement, "type" | "type_length" | "converted_type" | "logical_type" | "scale" | "precision">;

export type ColumnType =
  | { kind: "primitive"; leaf: Leaf; optional: boolean }
  | { kind: "list"; element: ColumnType; optional: boolean }
  | { kind: "struct"; fields: Columns; optional: boolean }
  /** Values of mixed JSON types, stored as JSON text. */
  | { kind: "json"; optional: boolean };

export type Columns = Map<string, ColumnType>;

export const TEXT: Leaf = { type: "BYTE_ARRAY", converted_type: "UTF8" };
const INT64: Leaf = { type: "INT64" };
const DOUBLE: Leaf = { type: "DOUBLE" };
const BOOLEAN: Leaf = { type: "BOOLEAN" };

const primitive = (leaf: Leaf, optional = false): ColumnType => ({ kind: "primitive", leaf, optional });
const sameLeaf = (a: Leaf, b: Leaf) => JSON.stringify(a) === JSON.stringify(b);

// ---- inference from JSON values ----

/** While inferring, a value seen only as null has no type yet; it becomes text if it never gets one. */
type Inferred = ColumnType | { kind: "null"; optional: true };
const NULL: Inferred = { kind: "null", optional: true };

/**
 * A JSON number's column type as written: an integer literal is INT64, a number written with a fraction or
 * an exponent (1.0, 2e3) is DOUBLE, and so is -0 (an integer column has no negative zero). A lossless-json
 * number carries its text; a plain number comes from a row without fractions or exponents.
 */
function numberLeaf(v: number | { value: string }): Leaf {
  if (typeof v === "number") return Number.isSafeInteger(v) && !Object.is(v, -0) ? INT64 : DOUBLE;
  return isInteger(v.value) && !Object.is(Number(v.value), -0) ? INT64 : DOUBLE;
}

function typeOfValue(v: unknown, depth = 0): ColumnType | null {
  if (v === null || v === undefined) return null;
  if (typeof v === "string") return primitive(TEXT);
  if (typeof v === "boolean") return primitive(BOOLEAN);
  if (typeof v === "number" || isLosslessNumber(v)) return primitive(numberLeaf(v as number | { value: string }));
  if (Array.isArray(v)) {
    let element: ColumnType | null = null;
    for (const e of v) {
      const t = typeOfValue(e, depth + 1);
      if (t) element = element ? merge(element, t) : t;
    }
    // Elements are nullable in Parquet's standard list layout; an empty list says nothing of its elements'
    // type (settle makes an all-empty list column one of text).
    return { kind: "list", element: { ...((element ?? NULL) as ColumnType), optional: true }, optional: false };
  }
  if (typeof v === "object") {
    const fields: Columns = new Map();
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) fields.set(k, (typeOfValue(x, depth + 1) ?? NULL) as ColumnType);
    return { kind: "struct", fields, optional: false };
  }
  return { kind: "json", optional: false };
}

function merge(a: ColumnType, b: ColumnType): ColumnType {
  const optional = a.optional || b.optional;
  if ((a as Inferred).kind === "null") return { ...b, optional: true };
  if ((b as Inferred).kind === "null") return { ...a, optional: true };
  if (a.kind === "primitive" && b.kind === "primitive") {
    if (sameLeaf(a.leaf, b.leaf)) return { ...a, optional };
    const numbers = [INT64, DOUBLE];
    if (numbers.some((n) => sameLeaf(n, a.leaf)) && numbers.some((n) => sameLeaf(n, b.leaf))) return primitive(DOUBLE, optional);
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
    if ((t as Inferred).kind === "null") return primitive(TEXT, true);
    if (t.kind === "list") return { ...t, element: one(t.element) };
    if (t.kind === "struct") return t.fields.size ? { ...t, fields: settle(t.fields) } : { kind: "json", optional: t.optional };
    return t;
  };
  return new Map([...columns].map(([k, t]) => [k, one(t)]));
}

/** Accumulates the column types of JSON rows, in order of first appearance. */
export class ColumnInference {
  private columns: Columns | undefined;

  /** `row`: the row's value, or its lossless-json parse (numbers with their text) where the reader made one. */
  add(row: Record<string, unknown>): void {
    const t = typeOfValue(row) as { fields: Columns };
    this.columns = this.columns ? mergeFields(this.columns, t.fields) : t.fields;
  }

  result(): Columns {
    return settle(this.columns ?? new Map());
  }
}

// ---- from a Parquet schema (hyparquet's schema tree) ----

/** Annotations whose values hyparquet hands over so that the writer writes back the same bytes (see read.ts's parsers). */
const EXACT_CONVERTED = new Set([
  "UTF8",
  "JSON",
  "ENUM",
  "INT_8",
  "INT_16",
  "INT_32",
  "INT_64",
  "UINT_8",
  "UINT_16",
  "UINT_32",
  "UINT_64",
  "DATE",
  "TIME_MILLIS",
  "TIME_MICROS",
  "TIMESTAMP_MILLIS",
  "TIMESTAMP_MICROS",
]);
const EXACT_LOGICAL = new Set(["STRING", "JSON", "ENUM", "INTEGER", "DATE", "TIME", "TIMESTAMP", "UUID"]);
const EXACT_PHYSICAL = new Set(["BOOLEAN", "INT32", "INT64", "FLOAT", "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY"]);

/** "INT64/TIMESTAMP(NANOS, UTC)": a leaf's type as a message names it. */
export function describeLeaf(e: Leaf): string {
  const logical = e.logical_type as ({ type: string } & Record<string, unknown>) | undefined;
  const args = logical
    ? Object.entries(logical)
        .filter(([k]) => k !== "type")
        .map(([k, v]) => `${k} ${String(v)}`)
    : [];
  return [e.type, e.converted_type, logical && `${logical.type}${args.length ? `(${args.join(", ")})` : ""}`].filter(Boolean).join("/");
}

function fromSchema(node: SchemaTree, file: string, path: string): ColumnType {
  const e = node.element;
  const optional = e.repetition_type !== "REQUIRED";
  const logical = (e.logical_type as { type?: string } | undefined)?.type;
  if (e.repetition_type === "REPEATED" && path.split(".").length === 1)
    throw new UserError(
      `${file}: column ${path} is a bare repeated field; only standard LIST columns are supported (rewrite it as a list, e.g. with pyarrow)`,
    );
  if (node.children.length) {
    if (e.converted_type === "LIST" || logical === "LIST") {
      const repeated = node.children[0]!;
      // Standard 3-level list (list / element); a repeated group of one field, or a repeated leaf, is a
      // 2-level legacy list whose elements are required.
      if (repeated.children.length === 1)
        return { kind: "list", element: fromSchema(repeated.children[0]!, file, `${path}.element`), optional };
      return {
        kind: "list",
        element: { ...fromSchema({ ...repeated, element: { ...repeated.element, repetition_type: "REQUIRED" } }, file, `${path}.element`) },
        optional,
      };
    }
    if (e.converted_type === "MAP" || e.converted_type === "MAP_KEY_VALUE" || logical === "MAP" || logical === "VARIANT")
      throw new UserError(
        `${file}: column ${path} is a ${logical ?? e.converted_type}, which dlc-prune cannot write back exactly; convert the column (e.g. to a list of structs or JSON text)`,
      );
    const fields: Columns = new Map();
    for (const c of node.children) {
      if (fields.has(c.element.name)) throw new UserError(`${file}: column ${path}.${c.element.name} appears twice; rename one`);
      fields.set(c.element.name, fromSchema(c, file, `${path}.${c.element.name}`));
    }
    return { kind: "struct", fields, optional };
  }
  const exact =
    EXACT_PHYSICAL.has(e.type ?? "") &&
    (!e.converted_type || EXACT_CONVERTED.has(e.converted_type)) &&
    (!logical || EXACT_LOGICAL.has(logical));
  if (!exact)
    throw new UserError(
      `${file}: column ${path} has type ${describeLeaf(e)}, which dlc-prune cannot write back exactly; convert the column (e.g. to text or a plain number)`,
    );
  const leaf: Leaf = {};
  for (const k of ["type", "type_length", "converted_type", "logical_type", "scale", "precision"] as const)
    if (e[k] !== undefined) (leaf as Record<string, unknown>)[k] = e[k];
  return primitive(leaf, optional);
}

/** The columns of a Parquet file; two columns with one name (which a reader keyed by name would merge) are refused. */
export function columnsFromParquet(schema: SchemaTree, file: string): Columns {
  const columns: Columns = new Map();
  for (const c of schema.children) {
    if (columns.has(c.element.name))
      throw new UserError(
        `${file}: two columns are named "${c.element.name}"; rename one (e.g. with pyarrow) so each column has its own name`,
      );
    columns.set(c.element.name, fromSchema(c, file, c.element.name));
  }
  return columns;
}
