/**
 * Dense vectors in the integer types vector databases store (Cohere's `embedding_types`), computed from the
 * unit float vector alone: no calibration data, so any server gives any client the same bytes.
 *
 * - int8: `round(127 * x[i] / max_j |x[j]|)`, in [-127, 127]. Each vector is scaled by its own largest
 *   component, so the whole range is used and nothing is clipped. Cosine similarity of int8 vectors is
 *   cosine of the floats up to rounding; their dot product is the floats' dot product times
 *   `127^2 / (max|a| * max|b|)`, a factor that differs per vector: rank int8 vectors by cosine (or
 *   normalise them first), not by raw dot product. `x[i] ~ int8[i] * max|x| / 127`, within `max|x| / 254`.
 * - uint8: int8 + 128, in [1, 255]. Subtract 128 before comparing; as stored, the offset dominates.
 * - binary / ubinary: sentence-transformers' `quantize_embeddings`: bit `x[i] > 0`, 8 dimensions per byte,
 *   the first dimension in the byte's highest bit (numpy's packbits); a length that is not a multiple of 8
 *   is padded with 0 bits. ubinary is that byte (0..255), binary the byte - 128 (-128..127). Compare
 *   by Hamming distance.
 */

export function int8Of(vector: Float32Array): Int8Array {
  let largest = 0;
  for (const x of vector) largest = Math.max(largest, Math.abs(x));
  const out = new Int8Array(vector.length);
  if (largest === 0) return out;
  const scale = 127 / largest;
  for (let i = 0; i < vector.length; i++) out[i] = Math.round(vector[i] * scale);
  return out;
}

export function uint8Of(vector: Float32Array): Uint8Array {
  return Uint8Array.from(int8Of(vector), (value) => value + 128);
}

export function ubinaryOf(vector: Float32Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(vector.length / 8));
  for (let i = 0; i < vector.length; i++) if (vector[i] > 0) out[i >> 3] |= 0x80 >> (i & 7);
  return out;
}

export function binaryOf(vector: Float32Array): Int8Array {
  return Int8Array.from(ubinaryOf(vector), (byte) => byte - 128);
}
