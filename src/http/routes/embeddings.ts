import type { FastifyPluginAsync } from "fastify";
import { embeddingsPieces } from "../answer-pieces.js";
import { errors } from "../errors.js";
import { sendJsonPieces } from "../json-stream.js";
import { dimensionsOf, parseInput } from "../parse-input.js";
import { statsOf } from "../request-log.js";
import { disconnectSignal, readyService, type ServingRouteOptions } from "../serving.js";
import { EmbeddingsBody, EmbeddingsResponse, ErrorSchema, type EmbeddingsBodyType } from "../schemas.js";

export const embeddingsRoute: FastifyPluginAsync<ServingRouteOptions> = async (app, { config, state }) => {
  app.post<{ Body: EmbeddingsBodyType }>(
    "/v1/embeddings",
    {
      schema: {
        summary: "Create embeddings (OpenAI-compatible)",
        body: EmbeddingsBody,
        response: { 200: EmbeddingsResponse, "4xx": ErrorSchema, "5xx": ErrorSchema },
      },
    },
    async (request, reply) => {
      const service = readyService(state);
      const { body } = request;
      const inputs = parseInput(body.input, config.maxInputs);
      const dimensions = dimensionsOf(body.dimensions, service.pipeline.dimensions);
      const dense = body.return_dense ?? true;
      const heads = { sparse: body.return_sparse ?? false, colbert: body.return_colbert_vecs ?? false };
      if (!dense && !heads.sparse && !heads.colbert) {
        throw errors.invalidRequest(
          "Nothing to return: 'return_dense' is false and neither 'return_sparse' nor 'return_colbert_vecs' is true.",
          "return_dense",
          "invalid_value",
        );
      }
      const result = await service.pipeline.embed({
        inputs,
        dimensions,
        outputs: { dense, ...heads },
        truncate: body.truncate ?? config.truncate,
        signal: disconnectSignal(reply),
      });
      request.embeddingStats = statsOf(inputs.length, result);
      const pieces = embeddingsPieces({
        items: result.items,
        format: body.encoding_format ?? "float",
        colbertDimensions: service.pipeline.colbertDimensions,
        tokenTexts: body.return_sparse_tokens ? (ids) => service.pipeline.tokenTexts(ids) : undefined,
        model: body.model ?? config.servedModelName,
        promptTokens: result.promptTokens,
        written: result.forget,
      });
      return sendJsonPieces(reply, pieces, { done: result.release, stalledAfterMs: config.requestTimeoutMs });
    },
  );
};
