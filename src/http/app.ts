import cors from "@fastify/cors";
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import type { Config } from "../config/load.js";
import type { ServiceState } from "../service/state.js";
import { requireApiKey } from "./auth.js";
import { errorHandlerPlugin } from "./error-handler.js";
import { requestLogPlugin } from "./request-log.js";
import { chatCompletionsRoute } from "./routes/chat-completions.js";
import { embeddingsRoute } from "./routes/embeddings.js";
import { healthRoute } from "./routes/health.js";
import { modelsRoute } from "./routes/models.js";
import { registerOpenApi } from "./openapi.js";

export interface AppOptions {
  readonly config: Config;
  readonly state: ServiceState;
  readonly logger?: FastifyServerOptions["logger"];
}

/** The HTTP layer: routes, validation, auth and error mapping over a ServiceState. */
export async function buildApp({ config, state, logger }: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: logger ?? { level: config.logLevel },
    bodyLimit: config.bodyLimit,
    disableRequestLogging: true,
    // OpenAI rejects `"input": 5` rather than reading it as "5": no type coercion.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    return503OnClosing: true,
    forceCloseConnections: "idle",
  });
  await app.register(errorHandlerPlugin, { bodyLimit: config.bodyLimit });
  await app.register(requestLogPlugin);
  await app.register(cors, { origin: config.corsOrigins === true ? true : [...config.corsOrigins] });

  await registerOpenApi(app, config.routePrefix);

  const routeOptions = { config, state };
  await app.register(
    async (scope) => {
      await scope.register(healthRoute, routeOptions);
      await scope.register(async (protectedScope) => {
        await requireApiKey(protectedScope, config.apiKeys);
        await protectedScope.register(modelsRoute, routeOptions);
        await protectedScope.register(embeddingsRoute, routeOptions);
        await protectedScope.register(chatCompletionsRoute);
      });
    },
    { prefix: config.routePrefix },
  );
  return app;
}
