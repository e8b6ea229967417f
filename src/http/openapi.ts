import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";

/**
 * Collects the OpenAPI document from the same schemas the routes validate with. Registered at the
 * root, before the routes, so it sees all of them.
 */
export async function collectOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      info: { title: "BGE-M3 embeddings (OpenAI-compatible)", version: "1" },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
  });
}

/** Serves the document at `/docs` (and `/docs/json`) of the scope it is registered in. */
export async function docsRoute(scope: FastifyInstance): Promise<void> {
  await scope.register(swaggerUi, { routePrefix: "/docs" });
}
