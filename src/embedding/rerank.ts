import { InputError } from "./errors.js";
import type { EmbeddingInput, EmbeddingPipeline } from "./pipeline.js";
import {
  colbertScore,
  DEFAULT_HYBRID_WEIGHTS,
  denseScore,
  hybridScore,
  sparseScore,
  type HybridWeights,
  type ScoreMode,
} from "./scores.js";

export interface RerankRequest {
  readonly query: EmbeddingInput;
  readonly documents: readonly EmbeddingInput[];
  /** Absent: hybrid where the heads are loaded, dense otherwise. */
  readonly mode?: ScoreMode;
  /** Hybrid mode's weights (FlagEmbedding's 0.4 / 0.2 / 0.4 when absent); missing kinds weigh 0. */
  readonly weights?: Partial<HybridWeights>;
  readonly truncate: boolean;
  readonly signal?: AbortSignal;
}

export interface RerankResult {
  /** One score per document, in the documents' order. */
  readonly scores: number[];
  readonly mode: ScoreMode;
  /** Every token the model saw, the query's included. */
  readonly promptTokens: number;
  readonly queueAndInferenceMs: number;
}

/** The weight of each kind of score a mode combines. */
function modeWeights(mode: ScoreMode, weights: Partial<HybridWeights> | undefined): HybridWeights {
  if (mode !== "hybrid") return { dense: 0, sparse: 0, colbert: 0, [mode]: 1 };
  if (!weights) return DEFAULT_HYBRID_WEIGHTS;
  const chosen = { dense: weights.dense ?? 0, sparse: weights.sparse ?? 0, colbert: weights.colbert ?? 0 };
  if (chosen.dense + chosen.sparse + chosen.colbert <= 0) {
    throw new InputError("'weights' must give at least one of dense, sparse and colbert a weight above 0.", "weights", "invalid_value");
  }
  return chosen;
}

/**
 * Scores documents against a query with BGE-M3's dense, sparse and ColBERT outputs (or their weighted
 * mix): the query and every document go through the pipeline as one request, so they share the queue's
 * admission, limits and batches with embedding requests, and the heads run only for the kinds that
 * weigh in.
 */
export async function rerank(pipeline: EmbeddingPipeline, request: RerankRequest): Promise<RerankResult> {
  const mode = request.mode ?? (pipeline.headsUnavailable ? "dense" : "hybrid");
  const weights = modeWeights(mode, request.weights);
  const result = await pipeline.embed({
    inputs: [request.query, ...request.documents],
    truncate: request.truncate,
    dimensions: pipeline.embedder.info.dimensions,
    heads: { sparse: weights.sparse > 0, colbert: weights.colbert > 0 },
    signal: request.signal,
  });
  const colbertDimensions = pipeline.embedder.heads?.colbertDimensions ?? 0;
  const scores = request.documents.map((_, i) => {
    const d = i + 1;
    return hybridScore(
      {
        dense: weights.dense > 0 ? denseScore(result.vectors[0], result.vectors[d]) : undefined,
        sparse: result.sparse ? sparseScore(result.sparse[0], result.sparse[d]) : undefined,
        colbert: result.colbert ? colbertScore(result.colbert[0], result.colbert[d], colbertDimensions) : undefined,
      },
      weights,
    );
  });
  return { scores, mode, promptTokens: result.promptTokens, queueAndInferenceMs: result.timings.queueAndInferenceMs };
}
