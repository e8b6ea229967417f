import type { FastifyPluginAsync } from "fastify";
import { sparsePieces } from "../answer-pieces.js";
import { errorResponses } from "../error-shapes.js";
import { sendJsonPieces } from "../json-stream.js";
import { parseInput, teiTruncation } from "../parse-input.js";
import { EmbedSparseBody, EmbedSparseResponse, type EmbedSparseBodyType } from "../rerank-schemas.js";
import { statsOf } from "../request-log.js";
import { disconnectSignal, readyService, type ServingRouteOptions } from "../serving.js";

/**
 * text-embeddings-inference's `/embed_sparse`, so its clients get BGE-M3's lexical weights unchanged; errors
 * in TEI's shape (424 without the heads, as TEI answers a model without SPLADE pooling).
 */
export const embedSparseRoute: FastifyPluginAsync<ServingRouteOptions> = async (app, { config, state }) => {
  app.post<{ Body: EmbedSparseBodyType }>(
    "/embed_sparse",
    {
      schema: {
        summary: "Sparse lexical weights (text-embeddings-inference's shape)",
        body: EmbedSparseBody,
        response: { 200: EmbedSparseResponse, ...errorResponses("tei") },
      },
      config: { errorShape: "tei" },
    },
    async (request, reply) => {
      const service = readyService(state);
      const { body } = request;
      const inputs = parseInput(body.inputs, config.maxInputs, "inputs");
      const result = await service.pipeline.embed({
        inputs,
        dimensions: service.pipeline.dimensions,
        outputs: { dense: false, sparse: true, colbert: false },
        ...teiTruncation(config.truncate, body),
        signal: disconnectSignal(reply),
      });
      request.embeddingStats = statsOf(inputs.length, result);
      return sendJsonPieces(reply, sparsePieces(result.items), { done: result.release, stalledAfterMs: config.requestTimeoutMs });
    },
  );
};
