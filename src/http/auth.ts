import bearerAuth from "@fastify/bearer-auth";
import type { FastifyInstance } from "fastify";
import { errors } from "./errors.js";

/**
 * Requires one of the keys as `Authorization: Bearer <key>` on every route of the scope it is
 * registered in (constant-time comparison by @fastify/bearer-auth). No keys means open. A refusal goes
 * through the error handler, so each route answers its 401 in its own API's shape.
 */
export async function requireApiKey(app: FastifyInstance, keys: readonly string[]): Promise<void> {
  if (keys.length === 0) return;
  await app.register(bearerAuth, {
    keys: [...keys],
    addHook: false,
    // Failed attempts are routine on a public endpoint; the key itself is never logged.
    verifyErrorLogLevel: "debug",
  });
  app.addHook("onRequest", (request, reply, done) => {
    app.verifyBearerAuth!(request, reply, (error) => done(error ? errors.unauthorized() : undefined));
  });
}
