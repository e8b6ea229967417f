import type { HeadWeights } from "../../src/engine/types.js";
import { seededUniform } from "./random.js";

/**
 * Seeded random heads for a model of `width` (ColBERT width x width like BGE-M3's 1024 x 1024), weights
 * ~U(-1/sqrt(width), 1/sqrt(width)) like a torch Linear's initialisation, the sparse bias positive so a
 * fair share of tokens gets a weight above 0.
 */
export function randomHeads(width: number, seed = 7): HeadWeights {
  const next = seededUniform(seed);
  const bound = 1 / Math.sqrt(width);
  const uniform = (n: number) => Float32Array.from({ length: n }, () => (2 * next() - 1) * bound);
  return {
    hiddenSize: width,
    sparse: { weight: uniform(width), bias: 0.05 },
    colbert: { weight: uniform(width * width), bias: uniform(width), outputSize: width },
  };
}
