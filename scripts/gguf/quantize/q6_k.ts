// Q6_K: super-blocks of 256 values in 16 sub-blocks of 16, each with an 8-bit scale, 6-bit levels
// (quantize_row_q6_K_ref, make_qx_quants).
import { fp16BitsToFp32, fp32ToFp16Bits } from "./f16.js";
import { checkLength, f, nearestInt } from "./rounding.js";

const groupMaxEps = f(1e-15);
const q6L = new Uint8Array(256);
const q6Scales = new Float32Array(16);

const q6W = new Float32Array(16);
const q6Wx = new Float32Array(16);
const q6Lcur = new Int8Array(16);

/** make_qx_quants(16, 32, x, L, rmse_type = 1, NULL); L holds l + 32. */
function makeQxQuants(x: Float32Array, xo: number, L: Uint8Array, lo: number): number {
  const n = 16, nmax = 32;
  const w = q6W, wx = q6Wx, cur = q6Lcur;
  let max = 0, amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i];
    }
  }
  if (amax < groupMaxEps) {
    L.fill(0, lo, lo + n);
    return 0;
  }
  let iscale = f(-nmax / max);
  let sumlx = 0, suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    let l = nearestInt(f(iscale * xi));
    l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
    L[lo + i] = l + nmax;
    cur[i] = l;
    const wi = f(xi * xi);
    w[i] = wi;
    wx[i] = f(wi * xi);
    sumlx = f(sumlx + f(wx[i] * l));
    suml2 = f(suml2 + f(f(wi * l) * l));
  }
  let scale = suml2 !== 0 ? f(sumlx / suml2) : 0;
  let best = f(scale * sumlx);
  const tenth = f(0.1);
  for (let is = -9; is <= 9; is++) {
    if (is === 0)
      continue;
    iscale = f(-f(nmax + f(tenth * is)) / max);
    let changed = false;
    for (let i = 0; i < n; i++) {
      let l = nearestInt(f(iscale * x[xo + i]));
      l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
      if (cur[i] !== l) {
        cur[i] = l;
        changed = true;
      }
    }
    // Same levels as the previous candidate => same sums; re-accepting them
    // would store the very same L and scale, so the outcome cannot change.
    if (!changed)
      continue;
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const l = cur[i];
      sumlx = f(sumlx + f(wx[i] * l));
      suml2 = f(suml2 + f(f(w[i] * l) * l));
    }
    if (suml2 > 0 && f(sumlx * sumlx) > f(best * suml2)) {
      for (let i = 0; i < n; i++)
        L[lo + i] = nmax + cur[i];
      scale = f(sumlx / suml2);
      best = f(scale * sumlx);
    }
  }
  return scale;
}

export function quantizeQ6_K(src: Float32Array): Uint8Array {
  checkLength(src, 256);
  const blocks = src.length / 256;
  const out = new Uint8Array(blocks * 210);
  const view = new DataView(out.buffer);
  const L = q6L, scales = q6Scales;
  for (let b = 0; b < blocks; b++) {
    const x0 = b * 256;
    const o = b * 210;
    let maxScale = 0, maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const scale = makeQxQuants(src, x0 + 16 * ib, L, 16 * ib);
      scales[ib] = scale;
      const abs = Math.abs(scale);
      if (abs > maxAbsScale) {
        maxAbsScale = abs;
        maxScale = scale;
      }
    }
    if (maxAbsScale < groupMaxEps)
      continue; // all-zero block, d = +0

    const iscale = f(-128 / maxScale);
    const dBits = fp32ToFp16Bits(f(1 / iscale));
    const dBlock = fp16BitsToFp32(dBits);
    view.setUint16(o + 208, dBits, true);
    for (let ib = 0; ib < 16; ib++) {
      const sc = Math.min(127, nearestInt(f(iscale * scales[ib])));
      out[o + 192 + ib] = sc & 0xff;
      const d = f(dBlock * sc);
      if (d === 0)
        continue;
      const xo = x0 + 16 * ib;
      for (let ii = 0; ii < 16; ii++) {
        const l = nearestInt(f(src[xo + ii] / d));
        L[16 * ib + ii] = 32 + (l < -32 ? -32 : l > 31 ? 31 : l);
      }
    }

    let ql = o, qh = o + 128;
    for (let j = 0; j < 256; j += 128) {
      for (let l = 0; l < 32; l++) {
        const l0 = L[j + l], l1 = L[j + l + 32], l2 = L[j + l + 64], l3 = L[j + l + 96];
        out[ql + l] = (l0 & 0xf) | ((l2 & 0xf) << 4);
        out[ql + l + 32] = (l1 & 0xf) | ((l3 & 0xf) << 4);
        out[qh + l] = (l0 >> 4) | ((l1 >> 4) << 2) | ((l2 >> 4) << 4) | ((l3 >> 4) << 6);
      }
      ql += 64;
      qh += 32;
    }
  }
  return out;
}
