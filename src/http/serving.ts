import type { FastifyReply, FastifyRequest } from "fastify";
import type { Config } from "../config/load.js";
import type { ReadyService, ServiceState } from "../service/state.js";
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
  }
}

/**
 * The 503 for a lagging event loop (@fastify/under-pressure), with Retry-After. `extra` goes in front of the
 * error, for routes whose 503 says more (/health's `status`).
 */
export function sendEventLoopOverload(reply: FastifyReply, extra: Record<string, unknown> = {}): void {
  const apiError = errors.overloaded("The server is overloaded (event loop delay); retry shortly.", 1);
  void reply.code(503).header("retry-after", String(apiError.retryAfter)).send({ ...extra, ...apiError.toBody() });
}
