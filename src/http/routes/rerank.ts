import { randomUUID } from "node:crypto";
import type { FastifyPluginAsync } from "fastify";
import type { Config } from "../../config/load.js";
import { rerank, type RerankRequest, type RerankResult } from "../../embedding/rerank.js";
import type { ServiceState } from "../../service/state.js";
import { errorResponses, type ErrorShape } from "../error-shapes.js";
import { errors } from "../errors.js";
import { teiTruncation, textInput } from "../parse-input.js";
import { RerankBody, RerankResponse, type RerankBodyType } from "../rerank-schemas.js";
import type { EmbeddingStats } from "../request-log.js";
import { disconnectSignal, readyService, type ServingRouteOptions } from "../serving.js";

/** The documents of either request shape, with the name each has in error messages. */
function documentsOf(body: RerankBodyType): { texts: string[]; field: "documents" | "texts" } {
  if (body.documents !== undefined && body.texts !== undefined) {
    throw errors.invalidRequest("Send either 'documents' or 'texts', not both.", "documents", "invalid_value");
  }
  if (body.texts !== undefined) return { texts: body.texts, field: "texts" };
  if (body.documents !== undefined) return { texts: documentTexts(body.documents), field: "documents" };
  throw errors.invalidRequest("'documents' (or 'texts') is required: the texts to score against 'query'.", "documents", "missing_documents");
}

/** Documents as strings or `{text}` objects (Cohere, Jina, llama.cpp). */
export function documentTexts(documents: readonly (string | { text: string })[]): string[] {
  return documents.map((d) => (typeof d === "string" ? d : d.text));
}

/** What a rerank request embedded, for its log line: the query and every document. */
export function rerankStats(documents: number, result: RerankResult): EmbeddingStats {
  return { inputs: documents + 1, tokens: result.promptTokens, queueAndInferenceMs: Math.round(result.queueAndInferenceMs) };
}

export interface RankedDocuments {
  /** The best `topN` (all when absent), best first: document index and score. */
  readonly ranked: { index: number; score: number }[];
  readonly result: RerankResult;
}

/**
 * Scores `texts` against `query` through the pipeline and sorts them, best first: what every rerank route
 * (OpenAI-style, TEI's, Cohere's) shares. `field` names the documents in error messages.
 */
export async function rankDocuments(
  state: ServiceState,
  config: Config,
  request: { query: string; texts: readonly string[]; field: string; topN?: number } & Omit<RerankRequest, "query" | "documents">,
): Promise<RankedDocuments> {
  const service = readyService(state);
  const { texts, field } = request;
  if (texts.length === 0) throw errors.invalidRequest(`'${field}' must not be empty.`, field, "empty_input");
  // the query and the documents are one request's inputs: MAX_INPUTS bounds them too
  const limit = Math.min(config.maxRerankDocuments, config.maxInputs - 1);
  if (texts.length > limit) {
    throw errors.invalidRequest(
      `'${field}' has ${texts.length} items; at most ${limit} are allowed per request (MAX_RERANK_DOCUMENTS, and MAX_INPUTS - 1 for the query).`,
      field,
      "too_many_inputs",
    );
  }
  const result = await rerank(service.pipeline, {
    ...request,
    query: textInput(request.query, "query"),
    documents: texts.map((text, i) => textInput(text, `${field}[${i}]`)),
  });
  const ranked = result.scores
    .map((score, index) => ({ index, score }))
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .slice(0, request.topN ?? texts.length);
  return { ranked, result };
}

/**
 * Scores documents against a query with BGE-M3 (`/v1/rerank` and `/rerank`). Request and answer follow
 * Cohere v2 / Jina / llama.cpp (`documents` -> `{results: [{index, relevance_score, document?}]}`) or
 * text-embeddings-inference (`texts` -> `[{index, score, text?}]`), sorted by score, best first. `/rerank`
 * is TEI's path: it answers errors in TEI's shape; `/v1/rerank` in OpenAI's. Cohere's `/v2/rerank` is in
 * `cohere.ts`.
 */
export const rerankRoute: FastifyPluginAsync<ServingRouteOptions> = async (app, { config, state }) => {
  const paths: [string, ErrorShape][] = [
    ["/v1/rerank", "openai"],
    ["/rerank", "tei"],
  ];
  for (const [path, errorShape] of paths) {
    const options = {
      schema: {
        summary: "Rerank documents against a query (Cohere / Jina / llama.cpp / text-embeddings-inference shapes)",
        body: RerankBody,
        response: { 200: RerankResponse, ...errorResponses(errorShape) },
      },
      config: { errorShape },
    };
    app.post<{ Body: RerankBodyType }>(path, options, async (request, reply) => {
      const { body } = request;
      const { texts, field } = documentsOf(body);
      const { ranked, result } = await rankDocuments(state, config, {
        query: body.query,
        texts,
        field,
        topN: body.top_n,
        mode: body.mode,
        weights: body.weights,
        ...teiTruncation(config.truncate, body),
        signal: disconnectSignal(reply),
      });
      const promptTokens = result.promptTokens;
      request.embeddingStats = rerankStats(texts.length, result);
      if (field === "texts") {
        return ranked.map(({ index, score }) => ({ index, score, text: body.return_text ? texts[index] : undefined }));
      }
      return {
        id: randomUUID(),
        object: "list" as const,
        model: body.model ?? config.servedModelName,
        results: ranked.map(({ index, score }) => ({
          index,
          relevance_score: score,
          document: body.return_documents ? { text: texts[index] } : undefined,
        })),
        usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
      };
    });
  }
};
