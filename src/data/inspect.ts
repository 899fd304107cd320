// One light pass over the data for what selection, writing and the report need besides the scores:
// the column types, group and stratification values, and response lengths in characters.
import { UserError } from "../util/errors.js";
import { ColumnInference, columnsFromParquet, type Columns } from "./columns.js";
import { fieldText, messagesOf, toSample, type ResolvedFormat } from "./formats.js";
import { dataKind, parquetSchemaOf, type RawRow } from "./read.js";
import type { DataSource } from "./source.js";

export interface DataInspection {
  rows: number;
  columnTypes: Columns;
  /** data.fields.group per row, when configured. */
  group: (string | null)[] | null;
  /** select.stratify per row, when configured. */
  stratify: (string | null)[] | null;
  /** Response characters per row; -1 where the row does not parse. */
  responseChars: Int32Array;
}

function responseChars(raw: RawRow, format: ResolvedFormat | undefined): number {
  if (!format || !raw.value) return -1;
  try {
    return messagesOf(toSample(raw, format))
      .filter((m) => m.role === "assistant")
      .reduce((a, m) => a + m.content.length, 0);
  } catch {
    return -1; // a bad row: listed as unscored by the score stage
  }
}

/** `stratify`: the field select.stratify names, whose value per row selection needs. */
export async function inspectData(source: DataSource, stratifyField: string | null): Promise<DataInspection> {
  const { path, fields } = source.config;
  const parquet = dataKind(path) === "parquet";
  const inference = parquet ? undefined : new ColumnInference();
  // A Parquet column that cannot be written back is said before the rows are read.
  const parquetColumns = parquet ? columnsFromParquet(await parquetSchemaOf(path), path) : undefined;
  const group: (string | null)[] | null = fields.group ? [] : null;
  const stratify: (string | null)[] | null = stratifyField ? [] : null;
  const chars: number[] = [];
  let format: ResolvedFormat | undefined;
  let stratifySeen = false;
  for await (const raw of source.rows()) {
    if (raw.value) {
      inference?.add((raw.lossless ?? raw.value) as RawRow["value"] & object);
      format ??= source.formatOf(raw.value);
    }
    group?.push(fieldText(raw.value, fields.group));
    if (stratify) {
      stratifySeen ||= !!raw.value && Object.hasOwn(raw.value, stratifyField!);
      stratify.push(fieldText(raw.value, stratifyField));
    }
    chars.push(responseChars(raw, format));
  }
  if (stratify && !stratifySeen) throw new UserError(`select.stratify: no row of ${path} has a field "${stratifyField}"`);
  const columns = parquetColumns ?? inference!.result();
  return { rows: chars.length, columnTypes: columns, group, stratify, responseChars: Int32Array.from(chars) };
}
