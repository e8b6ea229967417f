import { randomUUID } from "node:crypto";
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { cohereEmbedPieces, cohereMeta } from "../answer-pieces.js";
import {
  CohereEmbedResponse,
  CohereEmbedV1Body,
  CohereEmbedV2Body,
  CohereRerankBody,
  CohereRerankResponse,
  type CohereEmbedV1BodyType,
  type CohereEmbedV2BodyType,
  type CohereRerankBodyType,
  type EmbeddingType,
} from "../cohere-schemas.js";
import { errorResponses } from "../error-shapes.js";
import { errors } from "../errors.js";
import { sendJsonPieces } from "../json-stream.js";
import { dimensionsOf, parseInput } from "../parse-input.js";
import { statsOf } from "../request-log.js";
import { disconnectSignal, readyService, type ServingRouteOptions } from "../serving.js";
import { documentTexts, rankDocuments, rerankStats } from "./rerank.js";

/** The texts of a v1 or v2 request: `texts`, or v2's `inputs` of text parts (an input's parts joined with a space). */
function textsOf(body: CohereEmbedV2BodyType): { texts: string[]; field: string } {
  if (body.images !== undefined || body.input_type === "image") {
    throw errors.invalidRequest("BGE-M3 embeds text only: images cannot be embedded.", body.images !== undefined ? "images" : "input_type", "invalid_value");
  }
  if (body.texts !== undefined && body.inputs !== undefined) throw errors.invalidRequest("Send either 'texts' or 'inputs', not both.", "texts", "invalid_value");
  if (body.texts !== undefined) return { texts: body.texts, field: "texts" };
  if (body.inputs === undefined) throw errors.invalidRequest("'texts' (or 'inputs') is required: the texts to embed.", "texts", "missing_texts");
  const texts = body.inputs.map((input, i) =>
    input.content
      .map((part, k) => {
        if (part.type !== "text" || part.text === undefined) {
          throw errors.invalidRequest(`BGE-M3 embeds text only: inputs[${i}].content[${k}] is not a text part.`, `inputs[${i}].content[${k}]`, "invalid_value");
        }
        return part.text;
      })
      .join(" "),
  );
  return { texts, field: "inputs" };
}

/**
 * Cohere's embed (`/v2/embed`, `/v1/embed`) and rerank (`/v2/rerank`) on the same pipeline as every other
 * route, answering errors in Cohere's shape (`{id, message}`). Quantised types are computed from the unit
 * float vector as the answer is written (`src/embedding/quantize.ts` says how).
 */
export const cohereRoutes: FastifyPluginAsync<ServingRouteOptions> = async (app, { config, state }) => {
  const routeConfig = { errorShape: "cohere" as const };

  const embed = async (request: FastifyRequest, reply: FastifyReply, body: CohereEmbedV2BodyType, apiVersion: "1" | "2") => {
    const service = readyService(state);
    const { texts, field } = textsOf(body);
    const inputs = parseInput(texts, config.maxInputs, field);
    const truncate = body.truncate ?? "END";
    const result = await service.pipeline.embed({
      inputs,
      dimensions: dimensionsOf(body.output_dimension, service.pipeline.dimensions, "output_dimension"),
      truncate: truncate !== "NONE",
      truncateFrom: truncate === "START" ? "start" : "end",
      maxInputTokens: body.max_tokens,
      signal: disconnectSignal(reply),
    });
    request.embeddingStats = statsOf(inputs.length, result);
    // v2 answers by type, float when none is named; v1 without embedding_types answers a bare list of floats
    const types: EmbeddingType[] | undefined = body.embedding_types ?? (apiVersion === "2" ? ["float"] : undefined);
    const pieces = cohereEmbedPieces({ id: randomUUID(), items: result.items, types, texts, promptTokens: result.promptTokens, apiVersion });
    return sendJsonPieces(reply, pieces, { done: result.release, stalledAfterMs: config.requestTimeoutMs });
  };

  const embedSchema = (body: typeof CohereEmbedV2Body | typeof CohereEmbedV1Body, version: string) => ({
    summary: `Embed texts (Cohere's ${version} embed): float, int8, uint8, binary, ubinary, base64`,
    body,
    response: { 200: CohereEmbedResponse, ...errorResponses("cohere") },
  });
  app.post<{ Body: CohereEmbedV2BodyType }>("/v2/embed", { schema: embedSchema(CohereEmbedV2Body, "v2"), config: routeConfig }, (request, reply) =>
    embed(request, reply, request.body, "2"),
  );
  app.post<{ Body: CohereEmbedV1BodyType }>("/v1/embed", { schema: embedSchema(CohereEmbedV1Body, "v1"), config: routeConfig }, (request, reply) =>
    embed(request, reply, request.body, "1"),
  );

  app.post<{ Body: CohereRerankBodyType }>(
    "/v2/rerank",
    {
      schema: {
        summary: "Rerank documents against a query (Cohere's v2 rerank; BGE-M3's scores, not mapped to [0, 1])",
        body: CohereRerankBody,
        response: { 200: CohereRerankResponse, ...errorResponses("cohere") },
      },
      config: routeConfig,
    },
    async (request, reply) => {
      const { body } = request;
      const texts = documentTexts(body.documents);
      // Cohere cuts long documents (max_tokens_per_doc) rather than refusing them
      const { ranked, result } = await rankDocuments(state, config, {
        query: body.query,
        texts,
        field: "documents",
        topN: body.top_n,
        truncate: true,
        maxInputTokens: body.max_tokens_per_doc,
        signal: disconnectSignal(reply),
      });
      request.embeddingStats = rerankStats(texts.length, result);
      return {
        id: randomUUID(),
        results: ranked.map(({ index, score }) => ({ index, relevance_score: score })),
        meta: cohereMeta("2", result.promptTokens),
      };
    },
  );
};
