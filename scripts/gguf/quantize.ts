// F32 -> F16 / Q8_0 / Q4_K / Q6_K, reproducing ggml's reference quantizers
// (quantize_row_{q8_0,q4_K,q6_K}_ref in ggml-quants.c, i.e. what llama-quantize
// does without an imatrix) bit for bit. C does every step in float32, so every
// intermediate here goes through Math.fround: a double-precision shortcut would
// occasionally pick a different scale and produce different bytes. One file a
// type under quantize/ (rounding.ts: the float32 steps they share).
import { quantizeF16, quantizeF32 } from "./quantize/f16.js";
import { quantizeQ4_K } from "./quantize/q4_k.js";
import { quantizeQ6_K } from "./quantize/q6_k.js";
import { quantizeQ8_0 } from "./quantize/q8_0.js";
import { GgmlType } from "./writer.js";

export { fp16BitsToFp32, fp32ToFp16Bits, quantizeF16, quantizeF32 } from "./quantize/f16.js";
export { quantizeQ4_K, quantizeQ6_K, quantizeQ8_0 };

/** Encodes rows of F32 values (row length a multiple of the type's block size) as `type`. */
export function quantize(type: GgmlType, src: Float32Array): Uint8Array {
  switch (type) {
    case GgmlType.F32: return quantizeF32(src);
    case GgmlType.F16: return quantizeF16(src);
    case GgmlType.Q8_0: return quantizeQ8_0(src);
    case GgmlType.Q4_K: return quantizeQ4_K(src);
    case GgmlType.Q6_K: return quantizeQ6_K(src);
  }
}
