// F32 -> F16 / Q8_0 / Q4_K / Q6_K, reproducing ggml's reference quantizers
// (quantize_row_{q8_0,q4_K,q6_K}_ref in ggml-quants.c, i.e. what llama-quantize
// does without an imatrix) bit for bit. C does every step in float32, so every
// intermediate here goes through Math.fround: a double-precision shortcut would
// occasionally pick a different scale and produce different bytes.
import { GgmlType } from "./writer.js";

const f = Math.fround;

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE binary16 bits of `x`, round-to-nearest-even (what F16C and ggml's software path do). */
export function fp32ToFp16Bits(x: number): number {
  f32Scratch[0] = x;
  const bits = u32Scratch[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff)
    return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);

  const halfExp = exp - 127 + 15;
  if (halfExp >= 31)
    return sign | 0x7c00;
  if (halfExp <= 0) {
    // half subnormal: value = q * 2^-24
    const shift = 126 - exp;
    if (shift > 24)
      return sign;
    const full = mant | 0x800000;
    let q = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (q & 1) !== 0))
      q++;
    return sign | q;
  }
  let q = (halfExp << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // a carry out of the mantissa correctly bumps the exponent (up to infinity)
  if (rem > 0x1000 || (rem === 0x1000 && (q & 1) !== 0))
    q++;
  return sign | q;
}

const fp16Table = buildFp16Table();

function buildFp16Table(): Float32Array {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) !== 0 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0)
      table[h] = sign * mant * 2 ** -24;
    else if (exp === 31)
      table[h] = mant === 0 ? sign * Infinity : NaN;
    else
      table[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return table;
}

export function fp16BitsToFp32(h: number): number {
  return fp16Table[h & 0xffff];
}

/** ggml's nearest_int: float32 round-half-to-even via the 1.5*2^23 trick. */
function nearestInt(x: number): number {
  return f(x + 12582912) - 12582912;
}

/** C roundf: half away from zero. */
function roundHalfAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

export function quantizeF16(src: Float32Array): Uint8Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++)
    out[i] = fp32ToFp16Bits(src[i]);
  return littleEndianBytes(out);
}

export function quantizeF32(src: Float32Array): Uint8Array {
  return littleEndianBytes(src);
}

function littleEndianBytes(a: Float32Array | Uint16Array): Uint8Array {
  // x86/ARM hosts are little-endian, as GGUF is; a big-endian host would need byte swaps
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

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

// ---------------------------------------------------------------- Q4_K

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

// ---------------------------------------------------------------- Q6_K

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

function checkLength(src: Float32Array, blockSize: number): void {
  if (src.length % blockSize !== 0)
    throw new Error(`length ${src.length} is not a multiple of the block size ${blockSize}`);
}

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
