// The part of parquetjs-lite's (untyped, CommonJS) API that dlc-prune uses.
declare module "parquetjs-lite" {
  export interface FieldDefinition {
    type?: string;
    optional?: boolean;
    repeated?: boolean;
    compression?: string;
    fields?: Record<string, FieldDefinition>;
  }
  export class ParquetSchema {
    constructor(fields: Record<string, FieldDefinition>);
  }
  export class ParquetWriter {
    static openFile(schema: ParquetSchema, path: string, opts?: { useDataPageV2?: boolean; rowGroupSize?: number; pageSize?: number }): Promise<ParquetWriter>;
    appendRow(row: Record<string, unknown>): Promise<void>;
    close(): Promise<void>;
  }
  const parquet: { ParquetSchema: typeof ParquetSchema; ParquetWriter: typeof ParquetWriter };
  export default parquet;
}
