import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { FastifyInstance } from "fastify";

/** The OpenAPI document is generated from the same schemas the routes validate with. */
export async function registerOpenApi(app: FastifyInstance, routePrefix: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      info: { title: "BGE-M3 embeddings (OpenAI-compatible)", version: "1" },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: `${routePrefix}/docs` });
}
