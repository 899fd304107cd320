// An independent safetensors writer (imports nothing from src/): the 8-byte little-endian header length, the
// JSON header padded with spaces to 8 bytes as the safetensors library does, then each tensor's bytes in order.
import { writeFileSync } from "node:fs";

export type RefDtype = "F32" | "F16" | "BF16";

export interface RefTensor {
  name: string;
  shape: number[];
  /** fp32 values; F16 and BF16 store them rounded to nearest even. */
  data: Float32Array;
}

/** bf16 bits of each fp32 value, rounded to nearest, ties to even (NaN kept quiet). */
export function bf16Bits(x: Float32Array): Uint16Array {
  const u = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const b = u[i]!;
    if ((b & 0x7fffffff) > 0x7f800000) out[i] = (b >>> 16) | 0x40;
    else out[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

/** Rounds half to even. */
function roundEven(v: number): number {
  const f = Math.floor(v);
  return v - f > 0.5 || (v - f === 0.5 && f % 2 === 1) ? f + 1 : f;
}

/** IEEE binary16 bits of each value, rounded to nearest even (subnormals, overflow to infinity). */
export function f16Bits(x: Float32Array): Uint16Array {
  return Uint16Array.from(x, (v) => {
    const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
    const a = Math.abs(v);
    if (Number.isNaN(a)) return 0x7e00;
    if (a < 2 ** -14) return sign | roundEven(a / 2 ** -24); // 1024 is the smallest normal's bits
    let e = Math.floor(Math.log2(a));
    if (2 ** e > a) e--;
    if (2 ** (e + 1) <= a) e++;
    const m = roundEven((a / 2 ** e - 1) * 1024);
    const bits = ((e + 15) << 10) + m; // m = 1024 carries into the exponent
    return sign | Math.min(bits, 0x7c00);
  });
}

/** The fp32 values bf16 stores for `x`. */
export function bf16Round(x: Float32Array): Float32Array {
  const bits = bf16Bits(x);
  return new Float32Array(Uint32Array.from(bits, (b) => b << 16).buffer);
}

function tensorBytes(t: RefTensor, dtype: RefDtype): Uint8Array {
  if (dtype === "F32") return new Uint8Array(Float32Array.from(t.data).buffer); // little-endian hosts only, as here
  if (dtype === "F16") return new Uint8Array(f16Bits(t.data).buffer);
  return new Uint8Array(bf16Bits(Float32Array.from(t.data)).buffer);
}

/** The file's bytes; `header` may edit the header object before it is written (for damaged-file tests). */
export function safetensorsBytes(tensors: RefTensor[], dtype: RefDtype, header: (h: Record<string, any>) => void = () => {}): Buffer {
  const h: Record<string, any> = { __metadata__: { format: "pt" } };
  const bodies = tensors.map((t) => tensorBytes(t, dtype));
  let at = 0;
  tensors.forEach((t, i) => {
    h[t.name] = { dtype, shape: t.shape, data_offsets: [at, (at += bodies[i]!.byteLength)] };
  });
  header(h);
  let json = JSON.stringify(h);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, Buffer.from(json, "utf8"), ...bodies]);
}

export function writeSafetensors(path: string, tensors: RefTensor[], dtype: RefDtype): void {
  writeFileSync(path, safetensorsBytes(tensors, dtype));
}
