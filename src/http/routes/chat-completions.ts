import type { FastifyPluginAsync } from "fastify";

/**
 * API gateways (one-api, new-api) test a channel by calling chat completions; the seed answered 200
 * with an empty body, and so do we. This server does not generate text.
 */
export const chatCompletionsRoute: FastifyPluginAsync = async (app) => {
  app.post(
    "/v1/chat/completions",
    { schema: { summary: "Channel test for API gateways: 200 with an empty body" } },
    async (_request, reply) => reply.code(200).send(),
  );
};
