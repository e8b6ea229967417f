import type { FastifyReply } from "fastify";
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
