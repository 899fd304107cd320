// DuckDB as an independent Parquet reader for the outputs.
import { DuckDBInstance } from "@duckdb/node-api";

export async function readParquetRows(path: string): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create(":memory:");
  const connection = await db.connect();
  try {
    const reader = await connection.runAndReadAll(`SELECT * FROM read_parquet('${path.replaceAll("'", "''")}')`);
    return reader.getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    connection.closeSync();
  }
}

export async function parquetColumnTypes(path: string): Promise<Record<string, string>> {
  const db = await DuckDBInstance.create(":memory:");
  const connection = await db.connect();
  try {
    const reader = await connection.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${path.replaceAll("'", "''")}')`);
    return Object.fromEntries(reader.getRowObjectsJS().map((r) => [r.column_name as string, r.column_type as string]));
  } finally {
    connection.closeSync();
  }
}

/** bigint -> number, recursively, so DuckDB's values compare with JSON ones. */
export function plain(v: unknown): unknown {
  if (typeof v === "bigint") return Number(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object" && !(v instanceof Date)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/** Every value as DuckDB prints it (timestamps with every stored digit, -0.0 with its sign), and the column types. */
export async function parquetAsText(path: string): Promise<{ types: Record<string, string>; rows: Record<string, string | null>[] }> {
  const db = await DuckDBInstance.create(":memory:");
  const connection = await db.connect();
  try {
    const types = await parquetColumnTypes(path);
    const select = Object.keys(types)
      .map((c) => `CAST("${c.replaceAll('"', '""')}" AS VARCHAR) AS "${c.replaceAll('"', '""')}"`)
      .join(", ");
    const reader = await connection.runAndReadAll(`SELECT ${select} FROM read_parquet('${path.replaceAll("'", "''")}')`);
    return { types, rows: reader.getRowObjectsJS() as Record<string, string | null>[] };
  } finally {
    connection.closeSync();
  }
}
