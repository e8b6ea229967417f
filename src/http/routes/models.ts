import type { FastifyPluginAsync } from "fastify";
import { Type } from "@sinclair/typebox";
import type { Config } from "../../config/load.js";
import type { ServiceState } from "../../service/state.js";
import { errors } from "../errors.js";
import { ErrorSchema, ModelList, ModelObject } from "../schemas.js";

export interface ModelsRouteOptions {
  readonly config: Config;
  readonly state: ServiceState;
}

const OWNER = "bge-m3-server";

export const modelsRoute: FastifyPluginAsync<ModelsRouteOptions> = async (app, { config, state }) => {
  const modelObject = () => ({
    id: config.servedModelName,
    object: "model" as const,
    created: state.current?.createdAt ?? 0,
    owned_by: OWNER,
  });

  app.get("/v1/models", { schema: { summary: "List the served model", response: { 200: ModelList } } }, async () => ({
    object: "list" as const,
    data: [modelObject()],
  }));

  app.get<{ Params: { id: string } }>(
    "/v1/models/:id",
    {
      schema: {
        summary: "Describe the served model",
        params: Type.Object({ id: Type.String() }),
        response: { 200: ModelObject, 404: ErrorSchema },
      },
    },
    async (request) => {
      if (request.params.id !== config.servedModelName) {
        throw errors.notFound(`The model '${request.params.id}' does not exist; this server serves '${config.servedModelName}'.`, "model_not_found");
      }
      return modelObject();
    },
  );
};
