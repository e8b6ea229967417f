import type { FastifyPluginAsync } from "fastify";
import type { SparseWeights } from "../../engine/types.js";
import { encodeVector, encodeVectors } from "../encode.js";
import { errors } from "../errors.js";
import { parseInput } from "../parse-input.js";
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
      const maxDimensions = service.pipeline.embedder.info.dimensions;
      const dimensions = body.dimensions ?? maxDimensions;
      if (dimensions > maxDimensions) {
        throw errors.invalidRequest(
          `Invalid 'dimensions': ${dimensions} is more than the model's ${maxDimensions}.`,
          "dimensions",
          "invalid_value",
        );
      }
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
        heads,
        truncate: body.truncate ?? config.truncate,
        signal: disconnectSignal(reply),
      });
      request.embeddingStats = {
        inputs: inputs.length,
        tokens: result.promptTokens,
        queueAndInferenceMs: Math.round(result.timings.queueAndInferenceMs),
      };
      const format = body.encoding_format ?? "float";
      const embedder = service.pipeline.embedder;
      const sparseWire = (sparse: SparseWeights) => ({
        indices: Array.from(sparse.indices),
        values: Array.from(sparse.values),
        tokens: body.return_sparse_tokens ? embedder.heads?.tokenTexts(sparse.indices) : undefined,
      });
      return {
        object: "list" as const,
        data: result.vectors.map((vector, index) => ({
          object: "embedding" as const,
          index,
          embedding: dense ? encodeVector(vector, format) : undefined,
          sparse_embedding: result.sparse && sparseWire(result.sparse[index]),
          colbert_embedding: result.colbert && encodeVectors(result.colbert[index], embedder.heads?.colbertDimensions ?? 0, format),
        })),
        model: body.model ?? config.servedModelName,
        usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
      };
    },
  );
};
