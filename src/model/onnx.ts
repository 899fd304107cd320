// Reading, building and writing ONNX protobuf models (schema from the onnx-buf package).
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  AttributeProtoSchema,
  AttributeProto_AttributeType,
  GraphProtoSchema,
  ModelProtoSchema,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  StringStringEntryProtoSchema,
  TensorProtoSchema,
  TensorProto_DataLocation,
  TensorProto_DataType,
  TensorShapeProtoSchema,
  TensorShapeProto_DimensionSchema,
  TypeProtoSchema,
  TypeProto_TensorSchema,
  ValueInfoProtoSchema,
  type AttributeProto,
  type ModelProto,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from "onnx-buf";
import { UserError } from "../util/errors.js";
import { elementCount } from "../util/math.js";

export { TensorProto_DataType as DataType };
export type { ModelProto, NodeProto, TensorProto, ValueInfoProto };

export type Dim = number | string;
export type TensorData = Float32Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array;
/** Attribute values: integers and integer lists, strings, tensors. */
export type AttrValue = number | number[] | string | TensorProto;

const IR_VERSION = 8n;

function attribute(name: string, value: AttrValue): AttributeProto {
  if (typeof value === "number") {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: only integer attributes are supported`);
    return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INT, i: BigInt(value) });
  }
  if (typeof value === "string")
    return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.STRING, s: new TextEncoder().encode(value) });
  if (Array.isArray(value)) return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INTS, ints: value.map(BigInt) });
  return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.TENSOR, t: value });
}

/** Bytes of a typed array, as the little-endian raw_data ONNX stores (x86/ARM are little-endian). */
function bytesOf(data: TensorData): Uint8Array<ArrayBuffer> {
  const copy = new Uint8Array(data.byteLength);
  copy.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return copy;
}

export function tensor(name: string, dataType: TensorProto_DataType, dims: number[], data: TensorData): TensorProto {
  if (elementCount(dims) * (BYTES_PER_ELEMENT[dataType] ?? NaN) !== data.byteLength)
    throw new Error(`tensor ${name}: ${data.byteLength} bytes do not fit dims [${dims}] of ${TensorProto_DataType[dataType]}`);
  return create(TensorProtoSchema, { name, dataType, dims: dims.map(BigInt), rawData: bytesOf(data) });
}

/** Bytes per element of the element types a tensor's size is computed for. */
const BYTES_PER_ELEMENT: Partial<Record<TensorProto_DataType, number>> = {
  [TensorProto_DataType.FLOAT]: 4,
  [TensorProto_DataType.INT32]: 4,
  [TensorProto_DataType.UINT32]: 4,
  [TensorProto_DataType.FLOAT16]: 2,
  [TensorProto_DataType.BFLOAT16]: 2,
  [TensorProto_DataType.INT16]: 2,
  [TensorProto_DataType.UINT16]: 2,
  [TensorProto_DataType.INT64]: 8,
  [TensorProto_DataType.UINT64]: 8,
  [TensorProto_DataType.DOUBLE]: 8,
  [TensorProto_DataType.BOOL]: 1,
  [TensorProto_DataType.UINT8]: 1,
  [TensorProto_DataType.INT8]: 1,
};

/** The repeated field that holds a tensor's values when it has no raw_data (one entry per element), per the ONNX spec. */
const TYPED_FIELD: Partial<Record<TensorProto_DataType, "floatData" | "int32Data" | "int64Data" | "doubleData" | "uint64Data">> = {
  [TensorProto_DataType.FLOAT]: "floatData",
  [TensorProto_DataType.INT32]: "int32Data",
  [TensorProto_DataType.FLOAT16]: "int32Data",
  [TensorProto_DataType.BFLOAT16]: "int32Data",
  [TensorProto_DataType.INT16]: "int32Data",
  [TensorProto_DataType.UINT16]: "int32Data",
  [TensorProto_DataType.BOOL]: "int32Data",
  [TensorProto_DataType.UINT8]: "int32Data",
  [TensorProto_DataType.INT8]: "int32Data",
  [TensorProto_DataType.INT64]: "int64Data",
  [TensorProto_DataType.DOUBLE]: "doubleData",
  [TensorProto_DataType.UINT32]: "uint64Data",
  [TensorProto_DataType.UINT64]: "uint64Data",
};

const typeName = (t: TensorProto) => TensorProto_DataType[t.dataType] ?? `type ${t.dataType}`;

/**
 * The bytes a tensor's dims and element type call for, or undefined for an element type of unknown size
 * (strings...). Dims that are negative or multiply past 2^53 are refused, naming the tensor.
 */
export function declaredBytes(t: TensorProto, file: string): number | undefined {
  const dims = t.dims.map(Number);
  const bytes = elementCount(dims) * (BYTES_PER_ELEMENT[t.dataType as TensorProto_DataType] ?? NaN);
  if (dims.some((d) => !Number.isSafeInteger(d) || d < 0) || (!Number.isNaN(bytes) && !Number.isSafeInteger(bytes)))
    throw new UserError(
      `${file}: initializer ${t.name} has impossible dims [${t.dims.join(", ")}]; the model file is damaged or was edited: re-export it`,
    );
  return Number.isNaN(bytes) ? undefined : bytes;
}

/** The message for a tensor whose dims call for other than the `held` bytes it has. */
function sizeMismatch(t: TensorProto, file: string, declared: number, held: string): UserError {
  return new UserError(
    `${file}: initializer ${t.name} declares dims [${t.dims.join(", ")}] of ${typeName(t)} (${declared} bytes) but ${held}; the model file is damaged or was edited: re-export it`,
  );
}

/**
 * Checks, before anything is allocated for it, that a tensor stored in the model file (raw_data or the typed
 * field) holds exactly the bytes its dims call for. External data is checked by externalRef.
 */
export function checkInlineData(t: TensorProto, file: string): void {
  if (isExternal(t)) return;
  const declared = declaredBytes(t, file);
  if (declared === undefined) return;
  if (t.rawData.byteLength) {
    if (t.rawData.byteLength !== declared) throw sizeMismatch(t, file, declared, `holds ${t.rawData.byteLength} bytes of raw data`);
    return;
  }
  const field = TYPED_FIELD[t.dataType as TensorProto_DataType];
  const held = field ? t[field].length : 0;
  if (held * BYTES_PER_ELEMENT[t.dataType as TensorProto_DataType]! !== declared)
    throw sizeMismatch(t, file, declared, `holds ${held} values`);
}

export function valueInfo(name: string, elemType: TensorProto_DataType, dims: Dim[]): ValueInfoProto {
  const shape = create(TensorShapeProtoSchema, {
    dim: dims.map((d) =>
      create(TensorShapeProto_DimensionSchema, {
        value: typeof d === "number" ? { case: "dimValue", value: BigInt(d) } : { case: "dimParam", value: d },
      }),
    ),
  });
  const type = create(TypeProtoSchema, { value: { case: "tensorType", value: create(TypeProto_TensorSchema, { elemType, shape }) } });
  return create(ValueInfoProtoSchema, { name, type });
}

/** Appends nodes, initializers and graph inputs/outputs; generates unique value names. */
export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly inputs: ValueInfoProto[] = [];
  readonly outputs: ValueInfoProto[] = [];
  private counter = 0;

  /** `prefix` keeps generated names apart from those of a graph being extended. */
  constructor(private readonly prefix = "") {}

  /** Adds a node and returns its output names (fresh ones unless given). */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs: number | string[] = 1): string[] {
    const id = this.counter++;
    const names =
      typeof outputs === "number" ? Array.from({ length: outputs }, (_, i) => `${this.prefix}/${opType}_${id}/out${i}`) : outputs;
    this.nodes.push(
      create(NodeProtoSchema, {
        name: `${this.prefix}/${opType}_${id}`,
        opType,
        input: inputs,
        output: names,
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      }),
    );
    return names;
  }

  /** A node with a single output. */
  op1(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    return this.op(opType, inputs, attrs, output === undefined ? 1 : [output])[0]!;
  }

  initializer(name: string, dataType: TensorProto_DataType, dims: number[], data: TensorData): string {
    this.initializers.push(tensor(name, dataType, dims, data));
    return name;
  }

  /** An int64 constant (shape vectors, axes, indices). */
  int64(values: number[], dims: number[] = [values.length]): string {
    return this.initializer(
      `${this.prefix}/const_${this.counter++}`,
      TensorProto_DataType.INT64,
      dims,
      BigInt64Array.from(values.map(BigInt)),
    );
  }

  /** A floating-point constant of `dataType` (FLOAT or FLOAT16). */
  float(values: number[], dims: number[] = [values.length], dataType: TensorProto_DataType = TensorProto_DataType.FLOAT): string {
    return this.floatInitializer(`${this.prefix}/const_${this.counter++}`, dataType, dims, Float32Array.from(values));
  }

  /** An initializer from fp32 values, stored as `dataType` (FLOAT, or FLOAT16 rounded to nearest even). */
  floatInitializer(name: string, dataType: TensorProto_DataType, dims: number[], values: Float32Array): string {
    return this.initializer(name, dataType, dims, floatBytes(values, dataType));
  }

  /** An initializer whose bytes are not there yet (see DeferredBytes): it must be filled or made external before encoding. */
  emptyInitializer(name: string, dataType: TensorProto_DataType, dims: number[]): string {
    this.initializers.push(create(TensorProtoSchema, { name, dataType, dims: dims.map(BigInt) }));
    return name;
  }

  input(name: string, elemType: TensorProto_DataType, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  output(name: string, elemType: TensorProto_DataType, dims: Dim[]): string {
    this.outputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  toModel(opts: { name: string; opset: number; producer: string; metadata?: Record<string, string> }): ModelProto {
    const graph = create(GraphProtoSchema, {
      name: opts.name,
      node: this.nodes,
      initializer: this.initializers,
      input: this.inputs,
      output: this.outputs,
    });
    return create(ModelProtoSchema, {
      irVersion: IR_VERSION,
      producerName: opts.producer,
      opsetImport: [create(OperatorSetIdProtoSchema, { domain: "", version: BigInt(opts.opset) })],
      graph,
      metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => create(StringStringEntryProtoSchema, { key, value })),
    });
  }
}

/** The bytes of fp32 `values` stored as `dataType` (FLOAT, or FLOAT16 rounded to nearest even), without a copy for FLOAT. */
export function floatBytes(values: Float32Array, dataType: TensorProto_DataType): Uint8Array<ArrayBuffer> {
  const stored = dataType === TensorProto_DataType.FLOAT16 ? toFloat16Bits(values) : values;
  // Weights are never in shared memory; protobuf's bytes fields are typed with ArrayBuffer.
  return new Uint8Array(stored.buffer as ArrayBuffer, stored.byteOffset, stored.byteLength);
}

/** IEEE binary16 bit patterns of fp32 values, rounded to nearest even (Node 20 has no Float16Array). */
export function toFloat16Bits(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < values.length; i++) {
    const x = bits[i]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    const mant = x & 0x7fffff;
    const e = exp - 127 + 15;
    let h: number;
    if (exp === 0xff)
      h = 0x7c00 | (mant ? 0x200 : 0); // inf, nan
    else if (e >= 0x1f)
      h = 0x7c00; // overflow to inf
    else if (e <= 0) {
      // subnormal half (or zero): shift the implicit-1 mantissa into place, rounding half to even
      if (e < -10) h = 0;
      else {
        const m = mant | 0x800000;
        const shift = 14 - e;
        h = m >>> shift;
        const rem = m & ((1 << shift) - 1);
        const halfway = 1 << (shift - 1);
        if (rem > halfway || (rem === halfway && h & 1)) h++;
      }
    } else {
      h = (e << 10) | (mant >>> 13);
      const rem = mant & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry rolls into the exponent, as it should
    }
    out[i] = sign | h;
  }
  return out;
}

export function encodeModel(model: ModelProto): Uint8Array {
  return toBinary(ModelProtoSchema, model);
}

export function decodeModel(bytes: Uint8Array): ModelProto {
  return fromBinary(ModelProtoSchema, bytes);
}

export interface ExternalDataRef {
  location: string;
  offset: number;
  length: number;
}

/** True when a tensor's values are stored outside the protobuf (ONNX external data). */
export function isExternal(t: TensorProto): boolean {
  return t.dataLocation === TensorProto_DataLocation.EXTERNAL;
}

/**
 * Where an initializer's bytes live when stored outside the protobuf (ONNX external data), else undefined.
 * `file` (the model) is named when the reference cannot be followed or disagrees with the tensor's dims. Where
 * the location leads, and whether offset + length fit the file, is the reader's to check.
 */
export function externalRef(t: TensorProto, file: string): ExternalDataRef | undefined {
  if (!isExternal(t)) return undefined;
  const kv = new Map(t.externalData.map((e) => [e.key, e.value]));
  const location = kv.get("location");
  if (!location) throw new UserError(`${file}: initializer ${t.name} has external data without a location`);
  const declared = declaredBytes(t, file);
  const number = (key: string): number | undefined => {
    const value = kv.get(key);
    if (value === undefined) return undefined;
    const n = /^\d+$/.test(value.trim()) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n))
      throw new UserError(
        `${file}: initializer ${t.name} has an external data ${key} of ${JSON.stringify(value)}, not a byte count; re-export the model`,
      );
    return n;
  };
  const offset = number("offset") ?? 0;
  const length = number("length") ?? declared;
  if (length === undefined) throw new UserError(`${file}: initializer ${t.name} has external data of ${typeName(t)} without a length`);
  if (declared !== undefined && length !== declared) throw sizeMismatch(t, file, declared, `its external data is ${length} bytes`);
  return { location, offset, length };
}

/** Points an initializer at `location` (offset, length) and drops its inline bytes. */
export function setExternal(t: TensorProto, ref: ExternalDataRef): void {
  t.rawData = new Uint8Array(0);
  t.dataLocation = TensorProto_DataLocation.EXTERNAL;
  t.externalData = [
    create(StringStringEntryProtoSchema, { key: "location", value: ref.location }),
    create(StringStringEntryProtoSchema, { key: "offset", value: String(ref.offset) }),
    create(StringStringEntryProtoSchema, { key: "length", value: String(ref.length) }),
  ];
}

/** Offsets of parts of `lengths` bytes laid one after another at 64-byte boundaries, as optimum does, and the total size. */
export function layoutExternal(lengths: number[]): { offsets: number[]; size: number } {
  const offsets: number[] = [];
  let offset = 0;
  for (const length of lengths) {
    offset += (64 - (offset % 64)) % 64;
    offsets.push(offset);
    offset += length;
  }
  return { offsets, size: offset };
}

/** An initializer's bytes, produced only when they are written (a streamed import holds one tensor at a time). */
export interface DeferredBytes {
  byteLength: number;
  read(): Promise<Uint8Array<ArrayBuffer>>;
}

/**
 * Plans one external data blob named `location` holding every initializer of at least `minBytes`, laid out as
 * layoutExternal does, and points those initializers there. `deferred` initializers (empty until read) count
 * with their byteLength; smaller ones must have been filled in first. Returns, in blob order, each tensor's
 * name, where its bytes start and how to get them.
 */
export function placeExternal(
  model: ModelProto,
  location: string,
  deferred: ReadonlyMap<string, DeferredBytes>,
  minBytes = 1024,
): { name: string; offset: number; bytes: DeferredBytes }[] {
  const parts = model.graph!.initializer.flatMap((t) => {
    const later = deferred.get(t.name);
    const raw = t.rawData;
    if (later ? later.byteLength < minBytes : raw.byteLength < minBytes) return [];
    return [{ t, bytes: later ?? { byteLength: raw.byteLength, read: async () => raw } }];
  });
  const { offsets } = layoutExternal(parts.map((p) => p.bytes.byteLength));
  return parts.map(({ t, bytes }, i) => {
    setExternal(t, { location, offset: offsets[i]!, length: bytes.byteLength });
    return { name: t.name, offset: offsets[i]!, bytes };
  });
}
