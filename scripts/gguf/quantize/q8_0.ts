// Q8_0: blocks of 32 values, one F16 scale (max |x| / 127) and 32 signed bytes (quantize_row_q8_0_ref).
import { fp32ToFp16Bits } from "./f16.js";
import { checkLength, f, roundHalfAway } from "./rounding.js";

export function quantizeQ8_0(src: Float32Array): Uint8Array {
  const qk = 32;
  checkLength(src, qk);
  const blocks = src.length / qk;
  const out = new Uint8Array(blocks * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    const x0 = b * qk;
    let amax = 0;
    for (let j = 0; j < qk; j++) {
      const a = Math.abs(src[x0 + j]);
      if (a > amax)
        amax = a;
    }
    const d = f(amax / 127);
    const id = d !== 0 ? f(1 / d) : 0;
    const o = b * 34;
    view.setUint16(o, fp32ToFp16Bits(d), true);
    for (let j = 0; j < qk; j++)
      out[o + 2 + j] = roundHalfAway(f(src[x0 + j] * id)) & 0xff;
  }
  return out;
}
