import bearerAuth from "@fastify/bearer-auth";
import type { FastifyInstance } from "fastify";
import { errors } from "./errors.js";

/**
 * Requires one of the keys as `Authorization: Bearer <key>` on every route of the scope it is
 * registered in (constant-time comparison by @fastify/bearer-auth). No keys means open.
 */
export async function requireApiKey(app: FastifyInstance, keys: readonly string[]): Promise<void> {
  if (keys.length === 0) return;
  await app.register(bearerAuth, {
    keys: [...keys],
    // Failed attempts are routine on a public endpoint; the key itself is never logged.
    verifyErrorLogLevel: "debug",
    // The plugin's typings assume its own `{error: string}` body; ours is OpenAI's error object.
    errorResponse: (() => errors.unauthorized().toBody()) as unknown as (error: Error) => { error: string },
  });
}
