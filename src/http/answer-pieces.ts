import { endianness } from "node:os";
import type { InputOutputs, SparseWeights } from "../embedding/pipeline.js";
import { binaryOf, int8Of, ubinaryOf, uint8Of } from "../embedding/quantize.js";
import type { EmbeddingType } from "./cohere-schemas.js";

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
  /** Called once item `index` has been written: its outputs are no longer needed (EmbedResult.forget). */
  readonly written?: (index: number) => void;
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
    answer.written?.(index);
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

/** text-embeddings-inference's `/embed` answer (`EmbedResponse`): one array of numbers per input. */
export function* densePieces(items: readonly InputOutputs[]): Generator<string> {
  yield "[";
  for (const [n, item] of items.entries()) yield `${n === 0 ? "" : ","}${vectorJson(item.dense ?? EMPTY, "float")}`;
  yield "]";
}

/** text-embeddings-inference's `/embed_all` answer (`EmbedAllResponse`): per input, one array per token. */
export function* hiddenStatesPieces(items: readonly InputOutputs[], width: number, written?: (index: number) => void): Generator<string> {
  yield "[";
  for (const [n, item] of items.entries()) {
    if (n > 0) yield ",";
    yield* rowsJson(item.hidden ?? EMPTY, width, "float");
    written?.(n);
  }
  yield "]";
}

const EMPTY = new Float32Array(0);

/** One embedding type of a dense vector, as Cohere's JSON holds it. */
function typedVectorJson(vector: Float32Array, type: EmbeddingType): string {
  switch (type) {
    case "float":
      return vectorJson(vector, "float");
    case "base64":
      return vectorJson(vector, "base64");
    case "int8":
      return `[${int8Of(vector).join(",")}]`;
    case "uint8":
      return `[${uint8Of(vector).join(",")}]`;
    case "binary":
      return `[${binaryOf(vector).join(",")}]`;
    case "ubinary":
      return `[${ubinaryOf(vector).join(",")}]`;
  }
}

export interface CohereEmbedAnswer {
  readonly id: string;
  readonly items: readonly InputOutputs[];
  /** The types asked for; undefined: v1's `embeddings_floats` answer, a bare list of float vectors. */
  readonly types: readonly EmbeddingType[] | undefined;
  readonly texts: readonly string[];
  readonly promptTokens: number;
  readonly apiVersion: "1" | "2";
}

/** Cohere's embed answer (`EmbedByTypeResponse`, or v1's `EmbedFloatsResponse`), each type computed as it is written. */
export function* cohereEmbedPieces(answer: CohereEmbedAnswer): Generator<string> {
  const vectors = function* (type: EmbeddingType): Generator<string> {
    yield "[";
    for (const [n, item] of answer.items.entries()) yield `${n === 0 ? "" : ","}${typedVectorJson(item.dense ?? EMPTY, type)}`;
    yield "]";
  };
  const byType = answer.types !== undefined;
  yield `{"id":${JSON.stringify(answer.id)},"response_type":"${byType ? "embeddings_by_type" : "embeddings_floats"}","embeddings":`;
  if (answer.types === undefined) {
    yield* vectors("float");
  } else {
    for (const [n, type] of [...new Set(answer.types)].entries()) {
      yield `${n === 0 ? "{" : ","}"${type}":`;
      yield* vectors(type);
    }
    yield "}";
  }
  yield ',"texts":[';
  for (const [n, text] of answer.texts.entries()) yield `${n === 0 ? "" : ","}${JSON.stringify(text)}`;
  yield `],"meta":${JSON.stringify(cohereMeta(answer.apiVersion, answer.promptTokens))}}`;
}

/** Cohere's `meta`: the API version answered and the tokens the model saw (nothing is billed). */
export function cohereMeta(apiVersion: "1" | "2", promptTokens: number) {
  return { api_version: { version: apiVersion }, billed_units: { input_tokens: promptTokens } };
}
