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
  if (Array.isArray(value))
    return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INTS, ints: value.map(BigInt) });
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
  [TensorProto_DataType.FLOAT16]: 2,
  [TensorProto_DataType.BFLOAT16]: 2,
  [TensorProto_DataType.INT64]: 8,
  [TensorProto_DataType.DOUBLE]: 8,
  [TensorProto_DataType.BOOL]: 1,
  [TensorProto_DataType.UINT8]: 1,
  [TensorProto_DataType.INT8]: 1,
};

function valueInfo(name: string, elemType: TensorProto_DataType, dims: Dim[]): ValueInfoProto {
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
    const names = typeof outputs === "number" ? Array.from({ length: outputs }, (_, i) => `${this.prefix}/${opType}_${id}/out${i}`) : outputs;
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
    return this.initializer(`${this.prefix}/const_${this.counter++}`, TensorProto_DataType.INT64, dims, BigInt64Array.from(values.map(BigInt)));
  }

  /** A floating-point constant of `dataType` (FLOAT or FLOAT16). */
  float(values: number[], dims: number[] = [values.length], dataType: TensorProto_DataType = TensorProto_DataType.FLOAT): string {
    return this.floatInitializer(`${this.prefix}/const_${this.counter++}`, dataType, dims, Float32Array.from(values));
  }

  /** An initializer from fp32 values, stored as `dataType` (FLOAT, or FLOAT16 rounded to nearest even). */
  floatInitializer(name: string, dataType: TensorProto_DataType, dims: number[], values: Float32Array): string {
    return this.initializer(name, dataType, dims, dataType === TensorProto_DataType.FLOAT16 ? toFloat16Bits(values) : values);
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
    if (exp === 0xff) h = 0x7c00 | (mant ? 0x200 : 0); // inf, nan
    else if (e >= 0x1f) h = 0x7c00; // overflow to inf
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

/**
 * Where an initializer's bytes live when stored outside the protobuf (ONNX external data), else undefined.
 * `file` (the model) is named when the reference cannot be followed.
 */
export function externalRef(t: TensorProto, file: string): ExternalDataRef | undefined {
  if (t.dataLocation !== TensorProto_DataLocation.EXTERNAL) return undefined;
  const kv = new Map(t.externalData.map((e) => [e.key, e.value]));
  const location = kv.get("location");
  if (!location) throw new UserError(`${file}: initializer ${t.name} has external data without a location`);
  const length = kv.get("length") ?? elementCount(t.dims) * (BYTES_PER_ELEMENT[t.dataType as TensorProto_DataType] ?? NaN);
  if (Number.isNaN(Number(length))) throw new UserError(`${file}: initializer ${t.name} has external data of type ${TensorProto_DataType[t.dataType] ?? t.dataType} without a length`);
  return { location, offset: Number(kv.get("offset") ?? 0), length: Number(length) };
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

/**
 * Lays `bytes` (the bytes of `tensors`) out one after another at 64-byte boundaries, as optimum does, in one
 * external data blob named `location`, and points each tensor there. Returns the blob's parts (padding
 * included, in order) and each tensor's offset.
 */
export function packExternal(tensors: TensorProto[], bytes: Uint8Array[], location: string): { parts: Uint8Array[]; offsets: number[] } {
  const parts: Uint8Array[] = [];
  const offsets: number[] = [];
  let offset = 0;
  tensors.forEach((t, i) => {
    const pad = (64 - (offset % 64)) % 64;
    if (pad) parts.push(new Uint8Array(pad));
    offset += pad;
    parts.push(bytes[i]!);
    offsets.push(offset);
    setExternal(t, { location, offset, length: bytes[i]!.byteLength });
    offset += bytes[i]!.byteLength;
  });
  return { parts, offsets };
}

/** Moves the bytes of every initializer of at least `minBytes` into one external data blob named `location`; returns the blob's parts. */
export function moveToExternal(model: ModelProto, location: string, minBytes = 1024): Uint8Array[] {
  const tensors = model.graph!.initializer.filter((t) => t.rawData.byteLength >= minBytes);
  return packExternal(
    tensors,
    tensors.map((t) => t.rawData),
    location,
  ).parts;
}
