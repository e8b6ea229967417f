import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { Config } from "../../config/load.js";
import type { ServiceState } from "../../service/state.js";
import { errors } from "../errors.js";
import { ErrorSchema, HealthResponse } from "../schemas.js";
import { sendEventLoopOverload } from "../serving.js";
import { Type } from "@sinclair/typebox";

export interface HealthRouteOptions {
  readonly config: Config;
  readonly state: ServiceState;
}

/** 200 once the model is loaded, 503 before (and while shutting down): what probes wait for. */
export const healthRoute: FastifyPluginAsync<HealthRouteOptions> = async (app, { config, state }) => {
  const notReady = Type.Object({
    status: Type.String({ description: "loading, stopping, or overloaded" }),
    step: Type.Optional(Type.String({ description: "While loading: what start-up is doing (downloading the model, loading the model into memory...)." })),
    percent: Type.Optional(Type.Number({ description: "While downloading: how much of the file is there." })),
    detail: Type.Optional(Type.String({ description: "While a download waits to try again: why the last attempt failed." })),
  });
  const schema = { summary: "Readiness of the server", response: { 200: HealthResponse, 503: Type.Intersect([notReady, ErrorSchema]) } };
  // a lagging event loop: not ready for more traffic (readiness probes), and the 503 keeps this route's shape
  const routeConfig = { pressureHandler: (request: FastifyRequest, reply: FastifyReply) => sendEventLoopOverload(request, reply, { status: "overloaded" }) };
  app.get("/health", { schema, config: routeConfig }, async (_request, reply) => {
    const service = state.current;
    if (!service) {
      const apiError = state.isStopping ? errors.shuttingDown() : errors.notReady();
      const status = state.isStopping ? { status: "stopping" } : { status: "loading", ...state.loading };
      return reply.code(503).header("retry-after", String(apiError.retryAfter)).send({ ...status, ...apiError.toBody() });
    }
    const headsUnavailable = service.pipeline.headsUnavailable;
    return {
      status: "ok",
      model: config.servedModelName,
      engine: service.engine,
      device: service.device,
      outputs: headsUnavailable ? ["dense"] : ["dense", "sparse", "colbert"],
      heads_unavailable: headsUnavailable,
    };
  });
};
