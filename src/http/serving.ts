import type { FastifyReply, FastifyRequest } from "fastify";
import type { Config } from "../config/load.js";
import type { ErrorShape } from "./error-shapes.js";
import type { ReadyService, ServiceState } from "../service/state.js";
import { sendApiError } from "./error-handler.js";
import { errors } from "./errors.js";

/** What the routes that serve the model are registered with. */
export interface ServingRouteOptions {
  readonly config: Config;
  readonly state: ServiceState;
}

/** What routes that need the model share: the loaded service, or the 503 that says why there is none. */
export function readyService(state: ServiceState): ReadyService {
  const service = state.current;
  if (!service) throw state.isStopping ? errors.shuttingDown() : errors.notReady();
  return service;
}

/** Aborts when the client closes the connection before its answer was written. */
export function disconnectSignal(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once("close", () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}

declare module "fastify" {
  interface FastifyContextConfig {
    /** @fastify/under-pressure's per-route handler (its README), typed here: that plugin does not augment it. */
    pressureHandler?: (request: FastifyRequest, reply: FastifyReply) => void;
    /** The API whose error shape the route answers in (default OpenAI's). */
    errorShape?: ErrorShape;
  }
}

/**
 * The answer to a lagging event loop (@fastify/under-pressure), with Retry-After, in the route's error shape
 * (OpenAI's 503, TEI's and Cohere's 429). `extra` goes in front of the error, for routes whose answer says
 * more (/health's `status`).
 */
export function sendEventLoopOverload(request: FastifyRequest, reply: FastifyReply, extra: Record<string, unknown> = {}): void {
  void sendApiError(request, reply, errors.overloaded("The server is overloaded (event loop delay); retry shortly.", 1), extra);
}
