import { endianness } from "node:os";

export type EncodingFormat = "float" | "base64";

const littleEndian = endianness() === "LE";

/** base64 of little-endian float32, what OpenAI's SDKs decode by default. */
function toBase64(vector: Float32Array): string {
  const bytes = Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
  return (littleEndian ? bytes : Buffer.from(bytes).swap32()).toString("base64");
}

export function encodeVector(vector: Float32Array, format: EncodingFormat): number[] | string {
  return format === "base64" ? toBase64(vector) : Array.from(vector);
}

/** Packed vectors of `dimensions` floats each, one encoded vector per row. */
export function encodeVectors(packed: Float32Array, dimensions: number, format: EncodingFormat): (number[] | string)[] {
  const rows = dimensions > 0 ? packed.length / dimensions : 0;
  return Array.from({ length: rows }, (_, row) => encodeVector(packed.subarray(row * dimensions, (row + 1) * dimensions), format));
}
