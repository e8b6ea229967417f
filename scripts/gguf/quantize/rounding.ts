// float32 arithmetic as ggml's C quantizers do it: every intermediate rounded to float32 (Math.fround), C's
// rounding functions, and the block-size check the quantizers share.

export const f = Math.fround;

/** ggml's nearest_int: float32 round-half-to-even via the 1.5*2^23 trick. */
export function nearestInt(x: number): number {
  return f(x + 12582912) - 12582912;
}

/** C roundf: half away from zero. */
export function roundHalfAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

export function checkLength(src: Float32Array, blockSize: number): void {
  if (src.length % blockSize !== 0)
    throw new Error(`length ${src.length} is not a multiple of the block size ${blockSize}`);
}
