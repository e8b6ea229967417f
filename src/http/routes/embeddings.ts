import type { FastifyPluginAsync, FastifyReply } from "fastify";
import type { Config } from "../../config/load.js";
import type { ServiceState } from "../../service/state.js";
import { encodeVector } from "../encode.js";
import { errors } from "../errors.js";
import { parseInput } from "../parse-input.js";
import { EmbeddingsBody, EmbeddingsResponse, ErrorSchema, type EmbeddingsBodyType } from "../schemas.js";

export interface EmbeddingsRouteOptions {
  readonly config: Config;
  readonly state: ServiceState;
}

/** Aborts when the client closes the connection before its answer was written. */
function disconnectSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once("close", () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

export const embeddingsRoute: FastifyPluginAsync<EmbeddingsRouteOptions> = async (app, { config, state }) => {
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
      const service = state.current;
      if (!service) throw state.isStopping ? errors.shuttingDown() : errors.notReady();
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
      const result = await service.pipeline.embed({
        inputs,
        dimensions,
        truncate: body.truncate ?? config.truncate,
        signal: disconnectSignal(reply),
      });
      request.embeddingStats = {
        inputs: inputs.length,
        tokens: result.promptTokens,
        queueAndInferenceMs: Math.round(result.timings.queueAndInferenceMs),
      };
      const format = body.encoding_format ?? "float";
      return {
        object: "list" as const,
        data: result.vectors.map((vector, index) => ({
          object: "embedding" as const,
          index,
          embedding: encodeVector(vector, format),
        })),
        model: body.model ?? config.servedModelName,
        usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
      };
    },
  );
};
