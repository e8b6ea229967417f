import type { SparseWeights } from "../engine/types.js";

/**
 * BGE-M3's relevance scores, as FlagEmbedding (the model authors' code) computes them. Vectors are unit
 * length (dense, and each ColBERT vector), so dense and ColBERT scores lie in [-1, 1]; sparse scores are
 * unbounded products of lexical weights.
 */

/** Dot product of two dense unit vectors. */
export function denseScore(query: Float32Array, document: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < query.length; i++) dot += query[i] * document[i];
  return dot;
}

/** Sum over the token ids both hold of the product of their weights (indices ascending, as the engine sends them). */
export function sparseScore(query: SparseWeights, document: SparseWeights): number {
  let score = 0;
  for (let q = 0, d = 0; q < query.indices.length && d < document.indices.length; ) {
    const a = query.indices[q];
    const b = document.indices[d];
    if (a === b) score += query.values[q++] * document.values[d++];
    else if (a < b) q++;
    else d++;
  }
  return score;
}

/** Mean over the query's vectors of the largest dot product with one of the document's (late interaction). */
export function colbertScore(query: Float32Array, document: Float32Array, dimensions: number): number {
  const queryRows = query.length / dimensions;
  const documentRows = document.length / dimensions;
  if (queryRows === 0 || documentRows === 0) return 0;
  let total = 0;
  for (let q = 0; q < queryRows; q++) {
    const qo = q * dimensions;
    let best = -Infinity;
    for (let d = 0; d < documentRows; d++) {
      const dOffset = d * dimensions;
      let dot = 0;
      for (let i = 0; i < dimensions; i++) dot += query[qo + i] * document[dOffset + i];
      if (dot > best) best = dot;
    }
    total += best;
  }
  return total / queryRows;
}

export type ScoreMode = "dense" | "sparse" | "colbert" | "hybrid";

export interface HybridWeights {
  readonly dense: number;
  readonly sparse: number;
  readonly colbert: number;
}

/** FlagEmbedding's documented weights for dense, sparse and ColBERT (`weights_for_different_modes`). */
export const DEFAULT_HYBRID_WEIGHTS: HybridWeights = Object.freeze({ dense: 0.4, sparse: 0.2, colbert: 0.4 });

/** The weighted sum divided by the sum of the weights (FlagEmbedding's `compute_score`). */
export function hybridScore(scores: Partial<Record<keyof HybridWeights, number>>, weights: HybridWeights): number {
  let sum = 0;
  let weight = 0;
  for (const kind of ["dense", "sparse", "colbert"] as const) {
    if (weights[kind] === 0) continue;
    sum += weights[kind] * (scores[kind] ?? 0);
    weight += weights[kind];
  }
  return sum / weight;
}
