import { InputError } from "./errors.js";
import type { EmbeddingInput, EmbeddingPipeline, InputOutputs } from "./pipeline.js";
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
  /** Which end of an over-long input `truncate` cuts (default the end). */
  readonly truncateFrom?: "end" | "start";
  /** Most tokens per input, below the context (Cohere's `max_tokens_per_doc`). */
  readonly maxInputTokens?: number;
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
 * weigh in. Scores are folded as each batch finishes: only the query's outputs and one score per
 * document are kept, never the documents' vectors beyond their batch.
 */
export async function rerank(pipeline: EmbeddingPipeline, request: RerankRequest): Promise<RerankResult> {
  const mode = request.mode ?? (pipeline.headsUnavailable ? "dense" : "hybrid");
  const weights = modeWeights(mode, request.weights);
  const colbertDimensions = pipeline.colbertDimensions;
  const scores = new Array<number>(request.documents.length);
  let query: InputOutputs | undefined;
  const score = (index: number, outputs: InputOutputs) => {
    if (index === 0) {
      query = outputs;
      return;
    }
    // the pipeline hands a request's outputs over in input order, so the query's (input 0) came first
    if (!query) throw new Error("rerank: a document's outputs arrived before the query's");
    scores[index - 1] = hybridScore(
      {
        dense: query.dense && outputs.dense && denseScore(query.dense, outputs.dense),
        sparse: query.sparse && outputs.sparse && sparseScore(query.sparse, outputs.sparse),
        colbert: query.colbert && outputs.colbert && colbertScore(query.colbert, outputs.colbert, colbertDimensions),
      },
      weights,
    );
  };
  const summary = await pipeline.embedEach(
    {
      inputs: [request.query, ...request.documents],
      truncate: request.truncate,
      truncateFrom: request.truncateFrom,
      maxInputTokens: request.maxInputTokens,
      dimensions: pipeline.dimensions,
      outputs: { dense: weights.dense > 0, sparse: weights.sparse > 0, colbert: weights.colbert > 0 },
      signal: request.signal,
    },
    score,
    1,
  );
  return { scores, mode, promptTokens: summary.promptTokens, queueAndInferenceMs: summary.timings.queueAndInferenceMs };
}
