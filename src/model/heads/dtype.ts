import { HeadsError } from "./errors.js";

/** The element types a heads file may store (BGE-M3's are fp16); anything else is refused. */
export type HeadsDtype = "f16" | "bf16" | "f32";

/** Bytes per element. */
export const DTYPE_BYTES: Record<HeadsDtype, number> = { f16: 2, bf16: 2, f32: 4 };

/** IEEE binary16 -> number (exact: every half is a float32). */
function halfToNumber(bits: number): number {
  const exponent = (bits >>> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  const sign = bits & 0x8000 ? -1 : 1;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  // subnormals: fraction x 2^-24; normals: (1024 + fraction) x 2^(exponent - 25)
  return exponent === 0 ? sign * fraction * 2 ** -24 : sign * (1024 + fraction) * 2 ** (exponent - 25);
}

/** Every half's value, built on first use (256 KiB): prepareHeads reads a 1024-wide fp16 pair in 49 ms instead of 255 ms. */
let halfTable: Float32Array | undefined;
const halves = (): Float32Array => (halfTable ??= Float32Array.from({ length: 0x10000 }, (_, bits) => halfToNumber(bits)));

/**
 * `count` little-endian elements of `dtype` starting at element `first` of `bytes`, as float32.
 * bfloat16 is the top half of a float32, so it widens exactly by a 16-bit shift.
 */
export function decodeElements(bytes: Uint8Array, dtype: HeadsDtype, first: number, count: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  const size = DTYPE_BYTES[dtype];
  if ((first + count) * size > bytes.length) throw new HeadsError("tensor runs past the end of its storage");
  if (dtype === "f32") {
    for (let i = 0; i < count; i++) out[i] = view.getFloat32((first + i) * 4, true);
  } else if (dtype === "f16") {
    const table = halves();
    for (let i = 0; i < count; i++) out[i] = table[view.getUint16((first + i) * 2, true)];
  } else {
    const widened = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) widened[i] = view.getUint16((first + i) * 2, true) << 16;
  }
  return out;
}
