// Q4_K: super-blocks of 256 values in 8 sub-blocks of 32, each with a 6-bit scale and min, 4-bit levels
// (quantize_row_q4_K_ref, make_qkx2_quants).
import { fp16BitsToFp32, fp32ToFp16Bits } from "./f16.js";
import { checkLength, f, nearestInt } from "./rounding.js";

const q4Weights = new Float32Array(32);
const q4Xm = new Float32Array(32); // x - min, refreshed whenever min moves
const q4Laux = new Uint8Array(32);
const q4L = new Uint8Array(256);
const q4Scales = new Float32Array(8);
const q4Mins = new Float32Array(8);
const q4Packed = new Uint8Array(12);
let qkx2Min = 0; // second return value of makeQkx2Quants (C's *the_min)

/** make_qkx2_quants(32, 15, x, weights, L, &the_min, Laux, -1, 0.1, 20, false) */
function makeQkx2Quants(x: Float32Array, xo: number, L: Uint8Array, lo: number): number {
  const n = 32, nmax = 15, nstep = 20;
  const rmin = -1, rdelta = f(0.1);
  const w = q4Weights, Laux = q4Laux, xm = q4Xm;
  let min = x[xo], max = x[xo];
  let sumW = w[0];
  let sumX = f(sumW * x[xo]);
  for (let i = 1; i < n; i++) {
    const xi = x[xo + i];
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const wi = w[i];
    sumW = f(sumW + wi);
    sumX = f(sumX + f(wi * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    L.fill(0, lo, lo + n);
    qkx2Min = -min;
    return 0;
  }
  for (let i = 0; i < n; i++)
    xm[i] = f(x[xo + i] - min);
  let iscale = f(nmax / f(max - min));
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    let l = nearestInt(f(iscale * xm[i]));
    l = l < 0 ? 0 : l > nmax ? nmax : l;
    L[lo + i] = l;
    const diff = f(f(f(scale * l) + min) - x[xo + i]);
    bestError = f(bestError + f(w[i] * f(diff * diff)));
  }
  Laux.fill(255); // no previous candidate yet
  for (let is = 0; is <= nstep; is++) {
    // `min` moves when a better fit is found, and C re-reads it here on purpose
    iscale = f(f(f(rmin + f(rdelta * is)) + nmax) / f(max - min));
    let changed = false;
    for (let i = 0; i < n; i++) {
      let l = nearestInt(f(iscale * xm[i]));
      l = l < 0 ? 0 : l > nmax ? nmax : l;
      if (Laux[i] !== l) {
        Laux[i] = l;
        changed = true;
      }
    }
    // Same levels as the previous candidate => same sums and error, which can
    // never be strictly better than what that candidate already left in best.
    if (!changed)
      continue;
    let sumL = 0, sumL2 = 0, sumXL = 0;
    for (let i = 0; i < n; i++) {
      const l = Laux[i];
      const wl = f(w[i] * l);
      sumL = f(sumL + wl);
      sumL2 = f(sumL2 + f(wl * l));
      sumXL = f(sumXL + f(wl * x[xo + i]));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (D > 0) {
      let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
      let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        const diff = f(f(f(thisScale * Laux[i]) + thisMin) - x[xo + i]);
        curError = f(curError + f(w[i] * f(diff * diff)));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++)
          L[lo + i] = Laux[i];
        bestError = curError;
        scale = thisScale;
        if (min !== thisMin) {
          min = thisMin;
          for (let i = 0; i < n; i++)
            xm[i] = f(x[xo + i] - min);
        }
      }
    }
  }
  qkx2Min = -min;
  return scale;
}

export function quantizeQ4_K(src: Float32Array): Uint8Array {
  checkLength(src, 256);
  const blocks = src.length / 256;
  const out = new Uint8Array(blocks * 144);
  const view = new DataView(out.buffer);
  const L = q4L, scales = q4Scales, mins = q4Mins, packed = q4Packed;
  for (let b = 0; b < blocks; b++) {
    const x0 = b * 256;
    let maxScale = 0, maxMin = 0;
    for (let j = 0; j < 8; j++) {
      const xo = x0 + 32 * j;
      let sumX2 = 0;
      for (let l = 0; l < 32; l++)
        sumX2 = f(sumX2 + f(src[xo + l] * src[xo + l]));
      const avX = f(Math.sqrt(f(sumX2 / 32)));
      for (let l = 0; l < 32; l++)
        q4Weights[l] = f(avX + Math.abs(src[xo + l]));
      scales[j] = makeQkx2Quants(src, xo, L, 32 * j);
      mins[j] = qkx2Min;
      if (scales[j] > maxScale) maxScale = scales[j];
      if (mins[j] > maxMin) maxMin = mins[j];
    }

    const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
    const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
    for (let j = 0; j < 8; j++) {
      const ls = Math.min(63, nearestInt(f(invScale * scales[j])) & 0xff);
      const lm = Math.min(63, nearestInt(f(invMin * mins[j])) & 0xff);
      if (j < 4) {
        packed[j] = ls;
        packed[j + 4] = lm;
      } else {
        packed[j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
        packed[j - 4] |= (ls >> 4) << 6;
        packed[j] |= (lm >> 4) << 6;
      }
    }
    const dBits = fp32ToFp16Bits(f(maxScale / 63));
    const dminBits = fp32ToFp16Bits(f(maxMin / 63));
    const dBlock = fp16BitsToFp32(dBits), dminBlock = fp16BitsToFp32(dminBits);

    for (let j = 0; j < 8; j++) {
      let sc: number, m: number;
      if (j < 4) {
        sc = packed[j] & 63;
        m = packed[j + 4] & 63;
      } else {
        sc = (packed[j + 4] & 0xf) | ((packed[j - 4] >> 6) << 4);
        m = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
      }
      const d = f(dBlock * sc);
      if (d === 0)
        continue;
      const dm = f(dminBlock * m);
      const xo = x0 + 32 * j;
      for (let ii = 0; ii < 32; ii++) {
        const l = nearestInt(f(f(src[xo + ii] + dm) / d));
        L[32 * j + ii] = l < 0 ? 0 : l > 15 ? 15 : l;
      }
    }

    const o = b * 144;
    view.setUint16(o, dBits, true);
    view.setUint16(o + 2, dminBits, true);
    out.set(packed, o + 4);
    let q = o + 16;
    for (let j = 0; j < 256; j += 64) {
      for (let l = 0; l < 32; l++)
        out[q + l] = L[j + l] | (L[j + l + 32] << 4);
      q += 32;
    }
  }
  return out;
}
