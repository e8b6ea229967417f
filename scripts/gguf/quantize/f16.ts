// F32 and F16 tensors: IEEE binary16 conversion (round-to-nearest-even, as F16C and ggml's software path do),
// also the scale type of every block quantizer.

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
