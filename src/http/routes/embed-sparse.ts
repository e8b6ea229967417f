import type { FastifyPluginAsync } from "fastify";
import { sparsePieces } from "../answer-pieces.js";
import { errors } from "../errors.js";
import { sendJsonPieces } from "../json-stream.js";
import { parseInput } from "../parse-input.js";
import { EmbedSparseBody, EmbedSparseResponse, type EmbedSparseBodyType } from "../rerank-schemas.js";
import { ErrorSchema } from "../schemas.js";
import { disconnectSignal, readyService, type ServingRouteOptions } from "../serving.js";

/** text-embeddings-inference's `/embed_sparse`, so its clients get BGE-M3's lexical weights unchanged. */
export const embedSparseRoute: FastifyPluginAsync<ServingRouteOptions> = async (app, { config, state }) => {
  app.post<{ Body: EmbedSparseBodyType }>(
    "/embed_sparse",
    {
      schema: {
        summary: "Sparse lexical weights (text-embeddings-inference's shape)",
        body: EmbedSparseBody,
        response: { 200: EmbedSparseResponse, "4xx": ErrorSchema, "5xx": ErrorSchema },
      },
    },
    async (request, reply) => {
      const service = readyService(state);
      const { body } = request;
      if (body.truncation_direction?.toLowerCase() === "left") {
        throw errors.invalidRequest(
          "Only 'truncation_direction': 'Right' is supported (inputs are cut at the end, keeping </s>).",
          "truncation_direction",
          "invalid_value",
        );
      }
      const inputs = parseInput(body.inputs, config.maxInputs, "inputs");
      const result = await service.pipeline.embed({
        inputs,
        dimensions: service.pipeline.dimensions,
        outputs: { dense: false, sparse: true, colbert: false },
        truncate: body.truncate ?? config.truncate,
        signal: disconnectSignal(reply),
      });
      request.embeddingStats = { inputs: inputs.length, tokens: result.promptTokens, queueAndInferenceMs: Math.round(result.timings.queueAndInferenceMs) };
      return sendJsonPieces(reply, sparsePieces(result.items), { done: result.release, stalledAfterMs: config.requestTimeoutMs });
    },
  );
};
