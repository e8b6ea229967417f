import { endianness } from "node:os";
import type { InputOutputs, SparseWeights } from "../embedding/pipeline.js";

/**
 * The JSON text of the answers that carry vectors, as pieces for `sendJsonPieces`: one per item, and
 * one per ColBERT row, each encoded straight from its typed array. The text is exactly what Fastify's
 * serializer makes of the response schemas in `schemas.ts` (same field order; numbers as JavaScript
 * prints the float32 values, as `Array.from` then the serializer did), so clients see no change.
 */

export type EncodingFormat = "float" | "base64";

const littleEndian = endianness() === "LE";

/** A vector as JSON: an array of numbers, or base64 of little-endian float32 (OpenAI's SDKs' default). */
export function vectorJson(vector: Float32Array, format: EncodingFormat): string {
  if (format === "float") return `[${vector.join(",")}]`;
  const bytes = Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
  return `"${(littleEndian ? bytes : Buffer.from(bytes).swap32()).toString("base64")}"`;
}

function* rowsJson(packed: Float32Array, width: number, format: EncodingFormat): Generator<string> {
  yield "[";
  const rows = width > 0 ? packed.length / width : 0;
  for (let row = 0; row < rows; row++) {
    const json = vectorJson(packed.subarray(row * width, (row + 1) * width), format);
    yield row === 0 ? json : `,${json}`;
  }
  yield "]";
}

function sparseJson(sparse: SparseWeights, tokens: string[] | undefined): string {
  const texts = tokens ? `,"tokens":${JSON.stringify(tokens)}` : "";
  return `{"indices":[${sparse.indices.join(",")}],"values":[${sparse.values.join(",")}]${texts}}`;
}

export interface EmbeddingsAnswer {
  readonly items: readonly InputOutputs[];
  readonly format: EncodingFormat;
  readonly colbertDimensions: number;
  /** For `return_sparse_tokens`: the vocabulary entry of each id. */
  readonly tokenTexts?: (ids: Uint32Array) => string[];
  readonly model: string;
  readonly promptTokens: number;
}

/** OpenAI's `/v1/embeddings` answer (`EmbeddingsResponse`), with BGE-M3's extra outputs per item. */
export function* embeddingsPieces(answer: EmbeddingsAnswer): Generator<string> {
  yield '{"object":"list","data":[';
  for (const [index, item] of answer.items.entries()) {
    yield `${index === 0 ? "" : ","}{"object":"embedding","index":${index}`;
    if (item.dense) yield `,"embedding":${vectorJson(item.dense, answer.format)}`;
    if (item.sparse) yield `,"sparse_embedding":${sparseJson(item.sparse, answer.tokenTexts?.(item.sparse.indices))}`;
    if (item.colbert) {
      yield ',"colbert_embedding":';
      yield* rowsJson(item.colbert, answer.colbertDimensions, answer.format);
    }
    yield "}";
  }
  const tokens = answer.promptTokens;
  yield `],"model":${JSON.stringify(answer.model)},"usage":{"prompt_tokens":${tokens},"total_tokens":${tokens}}}`;
}

/** text-embeddings-inference's `/embed_sparse` answer (`EmbedSparseResponse`): per input, `[{index, value}]`. */
export function* sparsePieces(items: readonly InputOutputs[]): Generator<string> {
  yield "[";
  for (const [n, item] of items.entries()) {
    const { indices, values } = item.sparse ?? { indices: new Uint32Array(0), values: new Float32Array(0) };
    const entries = Array.from(indices, (index, i) => `{"index":${index},"value":${values[i]}}`);
    yield `${n === 0 ? "" : ","}[${entries.join(",")}]`;
  }
  yield "]";
}
