/**
 * The first `dimensions` components of a vector scaled to unit L2 norm, in place. Cutting before
 * normalising is what OpenAI's `dimensions` means (a Matryoshka-style shortened, renormalised vector).
 */
export function normalisePrefix(vector: Float32Array, dimensions: number = vector.length): Float32Array {
  const prefix = vector.subarray(0, dimensions);
  let sumOfSquares = 0;
  for (let i = 0; i < prefix.length; i++) sumOfSquares += prefix[i] * prefix[i];
  const norm = Math.sqrt(sumOfSquares);
  if (norm > 0) for (let i = 0; i < prefix.length; i++) prefix[i] /= norm;
  return prefix;
}
