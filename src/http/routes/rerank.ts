import { randomUUID } from "node:crypto";
import type { FastifyPluginAsync } from "fastify";
import { rerank } from "../../embedding/rerank.js";
import { errors } from "../errors.js";
import { textInput } from "../parse-input.js";
import { RerankBody, RerankResponse, type RerankBodyType } from "../rerank-schemas.js";
import { ErrorSchema } from "../schemas.js";
import { disconnectSignal, readyService, type ServingRouteOptions } from "../serving.js";

/** The documents of either request shape, with the name each has in error messages. */
function documentsOf(body: RerankBodyType): { texts: string[]; field: "documents" | "texts" } {
  if (body.documents !== undefined && body.texts !== undefined) {
    throw errors.invalidRequest("Send either 'documents' or 'texts', not both.", "documents", "invalid_value");
  }
  if (body.texts !== undefined) return { texts: body.texts, field: "texts" };
  if (body.documents !== undefined) {
    return { texts: body.documents.map((d) => (typeof d === "string" ? d : d.text)), field: "documents" };
  }
  throw errors.invalidRequest("'documents' (or 'texts') is required: the texts to score against 'query'.", "documents", "missing_documents");
}

/**
 * Scores documents against a query with BGE-M3 (`/v1/rerank` and `/rerank`). Request and answer follow
 * Cohere v2 / Jina / llama.cpp (`documents` -> `{results: [{index, relevance_score, document?}]}`) or
 * text-embeddings-inference (`texts` -> `[{index, score, text?}]`), sorted by score, best first.
 */
export const rerankRoute: FastifyPluginAsync<ServingRouteOptions> = async (app, { config, state }) => {
  const handler = async (body: RerankBodyType, signal: AbortSignal) => {
    const service = readyService(state);
    const { texts, field } = documentsOf(body);
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
      query: textInput(body.query, "query"),
      documents: texts.map((text, i) => textInput(text, `${field}[${i}]`)),
      mode: body.mode,
      weights: body.weights,
      truncate: body.truncate ?? config.truncate,
      signal,
    });
    const ranked = result.scores
      .map((score, index) => ({ index, score }))
      .sort((a, b) => b.score - a.score || a.index - b.index)
      .slice(0, body.top_n ?? texts.length);
    return { ranked, texts, field, result };
  };

  const options = {
    schema: {
      summary: "Rerank documents against a query (Cohere / Jina / llama.cpp / text-embeddings-inference shapes)",
      body: RerankBody,
      response: { 200: RerankResponse, "4xx": ErrorSchema, "5xx": ErrorSchema },
    },
  };
  for (const path of ["/v1/rerank", "/rerank"]) {
    app.post<{ Body: RerankBodyType }>(path, options, async (request, reply) => {
      const { body } = request;
      const { ranked, texts, field, result } = await handler(body, disconnectSignal(reply));
      const promptTokens = result.promptTokens;
      request.embeddingStats = { inputs: texts.length + 1, tokens: promptTokens, queueAndInferenceMs: Math.round(result.queueAndInferenceMs) };
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
