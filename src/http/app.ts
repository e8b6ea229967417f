import cors from "@fastify/cors";
import underPressure from "@fastify/under-pressure";
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from "fastify";
import type { Config } from "../config/load.js";
import type { Metrics } from "../metrics/metrics.js";
import type { ServiceState } from "../service/state.js";
import { requireApiKey } from "./auth.js";
import { errorHandlerPlugin } from "./error-handler.js";
import { sendEventLoopOverload } from "./serving.js";
import { collectOpenApi, docsRoute } from "./openapi.js";
import { requestLogPlugin } from "./request-log.js";
import { clientErrorHandler, registerJsonParser } from "./wire.js";
import { chatCompletionsRoute } from "./routes/chat-completions.js";
import { cohereRoutes } from "./routes/cohere.js";
import { embedSparseRoute } from "./routes/embed-sparse.js";
import { embeddingsRoute } from "./routes/embeddings.js";
import { healthRoute } from "./routes/health.js";
import { metricsRoute, requestMetricsHook } from "./routes/metrics.js";
import { modelsRoute } from "./routes/models.js";
import { rerankRoute } from "./routes/rerank.js";
import { teiRoutes } from "./routes/tei.js";

export interface AppOptions {
  readonly config: Config;
  readonly state: ServiceState;
  readonly metrics: Metrics;
  readonly logger?: FastifyServerOptions["logger"];
}

/** The HTTP layer: routes, validation, auth and error mapping over a ServiceState. */
export async function buildApp({ config, state, metrics, logger }: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: logger ?? { level: config.logLevel },
    bodyLimit: config.bodyLimit,
    // request-log.ts writes one line per request instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    // OpenAI rejects `"input": 5` rather than reading it as "5": no type coercion.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    return503OnClosing: true,
    clientErrorHandler,
    forceCloseConnections: "idle",
  });
  registerJsonParser(app);
  await app.register(errorHandlerPlugin, { bodyLimit: config.bodyLimit });
  await app.register(requestLogPlugin);
  await app.register(requestMetricsHook, { metrics });
  await app.register(cors, { origin: config.corsOrigins === true ? "*" : [...config.corsOrigins] });
  await app.register(underPressure, {
    maxEventLoopDelay: config.maxEventLoopDelayMs,
    pressureHandler: (request, reply) => sendEventLoopOverload(request, reply),
  });
  await collectOpenApi(app);
  // While shutting down, a finished response ends its keep-alive connection, so close() can finish.
  app.addHook("onSend", async (_request, reply) => {
    if (state.isStopping) reply.header("connection", "close");
  });

  const routeOptions = { config, state };
  await app.register(
    async (scope) => {
      await scope.register(healthRoute, routeOptions);
      if (config.metricsPublic) await scope.register(metricsRoute, { metrics });
      if (config.docsPublic) await docsRoute(scope);
      await scope.register(async (protectedScope) => {
        await requireApiKey(protectedScope, config.apiKeys);
        if (!config.metricsPublic) await protectedScope.register(metricsRoute, { metrics });
        if (!config.docsPublic) await docsRoute(protectedScope);
        await protectedScope.register(modelsRoute, routeOptions);
        await protectedScope.register(embeddingsRoute, routeOptions);
        await protectedScope.register(embedSparseRoute, routeOptions);
        await protectedScope.register(rerankRoute, routeOptions);
        await protectedScope.register(teiRoutes, routeOptions);
        await protectedScope.register(cohereRoutes, routeOptions);
        await protectedScope.register(chatCompletionsRoute);
      });
    },
    { prefix: config.routePrefix },
  );
  return app;
}
