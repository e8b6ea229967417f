import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import type { EmbedSummary } from "../embedding/pipeline.js";

export interface EmbeddingStats {
  readonly inputs: number;
  readonly tokens: number;
  readonly queueAndInferenceMs: number;
}

declare module "fastify" {
  interface FastifyRequest {
    embeddingStats?: EmbeddingStats;
  }
}

/** What a request embedded, for its log line. */
export function statsOf(inputs: number, summary: EmbedSummary): EmbeddingStats {
  return { inputs, tokens: summary.promptTokens, queueAndInferenceMs: Math.round(summary.timings.queueAndInferenceMs) };
}

/** One log line per request, with what it embedded; never bodies or headers (keys live there). */
export const requestLogPlugin = fp(async (app: FastifyInstance) => {
  app.decorateRequest("embeddingStats", undefined);
  app.addHook("onResponse", async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        url: request.url.split("?")[0],
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
        ...request.embeddingStats,
      },
      "request",
    );
  });
});
