// Reading safetensors files (Hugging Face's weight format): an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?}, then the raw little-endian
// tensor bytes. The header is checked whole before any tensor is read; tensors are read one at a time with
// positioned reads, so files of any size load without holding more than one tensor.
import type { FileHandle } from "node:fs/promises";
import { UserError } from "../util/errors.js";
import { readFully, openRegular } from "./files.js";

/** The dtypes read, and their bytes per element. */
const DTYPE_BYTES = { F32: 4, F16: 2, BF16: 2 } as const;
export type SafetensorsDtype = keyof typeof DTYPE_BYTES;
/** A header larger than this is not a weight file's (safetensors itself caps it at 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

export interface TensorEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  path: string;
  handle: FileHandle;
  tensors: Map<string, TensorEntry>;
}

/** Opens `path` and checks its header against the file's size: offsets inside the file, no overlaps, sizes matching shapes. */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  const { handle, size } = await openRegular(path, "a safetensors weight file");
  try {
    if (size < 8) throw new UserError(`${path}: truncated safetensors file (${size} bytes, the header length needs 8)`);
    const lenBytes = new Uint8Array(8);
    await readFully(handle, path, lenBytes, 0);
    const headerLen = Number(new DataView(lenBytes.buffer).getBigUint64(0, true));
    if (headerLen > MAX_HEADER_BYTES || 8 + headerLen > size)
      throw new UserError(`${path}: truncated or not a safetensors file (header length ${headerLen}, file ${size} bytes)`);
    const headerBytes = new Uint8Array(headerLen);
    await readFully(handle, path, headerBytes, 8);
    const tensors = parseHeader(headerBytes, path, 8 + headerLen, size);
    return { path, handle, tensors };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

function parseHeader(bytes: Uint8Array, path: string, dataStart: number, size: number): Map<string, TensorEntry> {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw new UserError(`${path}: the safetensors header is not valid JSON (${(err as Error).message})`);
  }
  if (!header || typeof header !== "object" || Array.isArray(header))
    throw new UserError(`${path}: the safetensors header is not a JSON object`);
  const tensors = new Map<string, TensorEntry>();
  for (const [name, raw] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    tensors.set(name, checkEntry(raw, `${path}: tensor ${name}`, dataStart, size));
  }
  const sorted = [...tensors.entries()].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i]![1].begin < sorted[i - 1]![1].end)
      throw new UserError(`${path}: tensors ${sorted[i - 1]![0]} and ${sorted[i]![0]} overlap; the file is damaged`);
  return tensors;
}

/** One header entry, checked; `where` names the file and tensor. */
function checkEntry(raw: unknown, where: string, dataStart: number, size: number): TensorEntry {
  const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (!e || typeof e !== "object") throw new UserError(`${where}: not a {dtype, shape, data_offsets} entry`);
  if (typeof e.dtype !== "string" || !Object.hasOwn(DTYPE_BYTES, e.dtype))
    throw new UserError(`${where}: dtype ${JSON.stringify(e.dtype)} is not supported (${Object.keys(DTYPE_BYTES).join(", ")})`);
  const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  if (!Array.isArray(e.shape) || !e.shape.every(isCount))
    throw new UserError(`${where}: shape ${JSON.stringify(e.shape)} is not a list of sizes`);
  const offsets = e.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1])
    throw new UserError(`${where}: data_offsets ${JSON.stringify(offsets)} is not [begin, end]`);
  const dtype = e.dtype as SafetensorsDtype;
  const shape = e.shape as number[];
  const [begin, end] = [dataStart + offsets[0], dataStart + offsets[1]];
  if (end > size)
    throw new UserError(`${where}: data_offsets end at byte ${end}, past the file's end (${size} bytes); the file is truncated`);
  const expected = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
  if (end - begin !== expected)
    throw new UserError(`${where}: ${end - begin} bytes, but shape [${shape.join(", ")}] of ${dtype} needs ${expected}`);
  return { dtype, shape, begin, end };
}

/** The tensor's values as fp32 (F16 and BF16 widened exactly). */
export async function readTensorF32(file: SafetensorsFile, name: string): Promise<Float32Array> {
  const t = file.tensors.get(name);
  if (!t) throw new Error(`${file.path}: no tensor ${name}`);
  const bytes = new Uint8Array(t.end - t.begin);
  await readFully(file.handle, file.path, bytes, t.begin);
  const view = new DataView(bytes.buffer);
  if (t.dtype === "F32") return Float32Array.from({ length: bytes.byteLength / 4 }, (_, i) => view.getFloat32(4 * i, true));
  const n = bytes.byteLength / 2;
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  // bf16 is the top half of an fp32
  if (t.dtype === "BF16") for (let i = 0; i < n; i++) bits[i] = view.getUint16(2 * i, true) << 16;
  else for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
  return out;
}

/** IEEE binary16 bits to their (exactly representable) value. */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}
