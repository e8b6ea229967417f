import type { FastifyPluginAsync } from "fastify";
import fp from "fastify-plugin";
import type { Metrics } from "../../metrics/metrics.js";

export interface MetricsRouteOptions {
  readonly metrics: Metrics;
}

/** Prometheus text format; every request is counted by its route pattern, not its raw URL. */
export const metricsRoute: FastifyPluginAsync<MetricsRouteOptions> = async (app, { metrics }) => {
  app.get("/metrics", { schema: { summary: "Prometheus metrics", hide: false } }, async (_request, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );
};

/** Counts every answered request, 404s and errors included. */
export const requestMetricsHook = fp<MetricsRouteOptions>(async (app, { metrics }) => {
  app.addHook("onResponse", async (request, reply) => {
    metrics.observeRequest(request.routeOptions.url ?? "unmatched", request.method, reply.statusCode, reply.elapsedTime / 1000);
  });
});
