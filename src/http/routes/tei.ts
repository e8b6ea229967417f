import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyPluginAsync } from "fastify";
import { densePieces, hiddenStatesPieces } from "../answer-pieces.js";
import { errorResponses } from "../error-shapes.js";
import { errors } from "../errors.js";
import { sendJsonPieces } from "../json-stream.js";
import { dimensionsOf, parseInput, teiTruncation } from "../parse-input.js";
import { statsOf } from "../request-log.js";
import { disconnectSignal, readyService, type ServingRouteOptions } from "../serving.js";
import {
  TeiDecodeBody,
  TeiDecodeResponse,
  TeiEmbedAllBody,
  TeiEmbedAllResponse,
  TeiEmbedBody,
  TeiEmbedResponse,
  TeiInfoResponse,
  TeiTokenizeBody,
  TeiTokenizeResponse,
  type TeiDecodeBodyType,
  type TeiEmbedAllBodyType,
  type TeiEmbedBodyType,
  type TeiTokenizeBodyType,
} from "../tei-schemas.js";

/** This package's version, from the first package.json above this file (a checkout and dist/ nest it differently). */
function packageVersion(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    const file = join(dir, "package.json");
    if (existsSync(file)) return (JSON.parse(readFileSync(file, "utf8")) as { version?: string }).version ?? "unknown";
  }
  return "unknown";
}

/** BGE-M3's sentence-transformers config defines no prompts, so no `prompt_name` can be honoured. */
function refusePromptName(name: string | null | undefined): void {
  if (name === undefined || name === null) return;
  throw errors.invalidRequest(
    `Invalid 'prompt_name': '${name}'. BGE-M3 defines no prompts (its sentence-transformers 'prompts' are empty); send the text as it should be embedded.`,
    "prompt_name",
    "invalid_value",
  );
}

/**
 * text-embeddings-inference's routes for an embedding model (its router/src/http/server.rs): `/embed`
 * (also `POST /` and `/invocations`, where TEI serves it for an embedding model, which is where Hugging
 * Face's inference clients post with an endpoint URL), `/embed_all`, `/tokenize`, `/decode` and `/info`,
 * answering errors in TEI's shape. `/embed_sparse` and `/rerank` are in their own files.
 */
export const teiRoutes: FastifyPluginAsync<ServingRouteOptions> = async (app, { config, state }) => {
  const version = packageVersion();
  const routeConfig = { errorShape: "tei" as const };
  const embedSchema = {
    summary: "Dense vectors (text-embeddings-inference's /embed)",
    body: TeiEmbedBody,
    response: { 200: TeiEmbedResponse, ...errorResponses("tei") },
  };
  for (const path of ["/embed", "/", "/invocations"]) {
    app.post<{ Body: TeiEmbedBodyType }>(path, { schema: embedSchema, config: routeConfig }, async (request, reply) => {
      const service = readyService(state);
      const { body } = request;
      refusePromptName(body.prompt_name);
      const inputs = parseInput(body.inputs, config.maxInputs, "inputs");
      const result = await service.pipeline.embed({
        inputs,
        dimensions: dimensionsOf(body.dimensions, service.pipeline.dimensions),
        normalize: body.normalize ?? true,
        ...teiTruncation(config.truncate, body),
        signal: disconnectSignal(reply),
      });
      request.embeddingStats = statsOf(inputs.length, result);
      return sendJsonPieces(reply, densePieces(result.items), { done: result.release, stalledAfterMs: config.requestTimeoutMs });
    });
  }

  app.post<{ Body: TeiEmbedAllBodyType }>(
    "/embed_all",
    {
      schema: {
        summary: "The encoder's last hidden state of every token (text-embeddings-inference's /embed_all)",
        body: TeiEmbedAllBody,
        response: { 200: TeiEmbedAllResponse, ...errorResponses("tei") },
      },
      config: routeConfig,
    },
    async (request, reply) => {
      const service = readyService(state);
      const { body } = request;
      refusePromptName(body.prompt_name);
      const inputs = parseInput(body.inputs, config.maxInputs, "inputs");
      const result = await service.pipeline.embed({
        inputs,
        dimensions: service.pipeline.dimensions,
        outputs: { dense: false, sparse: false, colbert: false, hidden: true },
        ...teiTruncation(config.truncate, body),
        signal: disconnectSignal(reply),
      });
      request.embeddingStats = statsOf(inputs.length, result);
      const pieces = hiddenStatesPieces(result.items, service.pipeline.dimensions, result.forget);
      return sendJsonPieces(reply, pieces, { done: result.release, stalledAfterMs: config.requestTimeoutMs });
    },
  );

  app.post<{ Body: TeiTokenizeBodyType }>(
    "/tokenize",
    {
      schema: {
        summary: "Tokens of each text, with the UTF-8 byte span each covers (text-embeddings-inference's /tokenize)",
        body: TeiTokenizeBody,
        response: { 200: TeiTokenizeResponse, ...errorResponses("tei") },
      },
      config: routeConfig,
    },
    async (request, reply) => {
      const service = readyService(state);
      const { body } = request;
      refusePromptName(body.prompt_name);
      const texts = parseInput(body.inputs, config.maxInputs, "inputs").map((input) => (input.kind === "text" ? input.text : ""));
      const tokenized = await service.pipeline.tokenize(texts, body.add_special_tokens ?? true);
      request.embeddingStats = { inputs: texts.length, tokens: tokenized.reduce((sum, tokens) => sum + tokens.length, 0), queueAndInferenceMs: 0 };
      const pieces = tokenized.map((tokens, i) => `${i === 0 ? "[" : ","}${JSON.stringify(tokens)}${i === tokenized.length - 1 ? "]" : ""}`);
      return sendJsonPieces(reply, pieces, { stalledAfterMs: config.requestTimeoutMs });
    },
  );

  app.post<{ Body: TeiDecodeBodyType }>(
    "/decode",
    {
      schema: {
        summary: "The text token ids spell (text-embeddings-inference's /decode)",
        body: TeiDecodeBody,
        response: { 200: TeiDecodeResponse, ...errorResponses("tei") },
      },
      config: routeConfig,
    },
    async (request) => {
      const service = readyService(state);
      const { ids } = request.body;
      const lists = ids.length > 0 && Array.isArray(ids[0]) ? (ids as number[][]) : [ids as number[]];
      if (lists.some((list) => list.length === 0)) throw errors.invalidRequest("'ids' must not be empty.", "ids", "empty_input");
      if (lists.length > config.maxInputs) {
        throw errors.invalidRequest(`'ids' has ${lists.length} items; at most ${config.maxInputs} are allowed per request.`, "ids", "too_many_inputs");
      }
      return service.pipeline.decode(lists, request.body.skip_special_tokens ?? true, "ids");
    },
  );

  app.get(
    "/info",
    { schema: { summary: "The served model and this server's limits (text-embeddings-inference's /info)", response: { 200: TeiInfoResponse, ...errorResponses("tei") } }, config: routeConfig },
    async () => {
      const { pipeline } = readyService(state);
      return {
        model_id: config.servedModelName,
        model_sha: null,
        model_dtype: "gguf",
        model_type: { embedding: { pooling: "cls" } },
        max_concurrent_requests: config.maxQueue,
        max_input_length: pipeline.contextSize,
        max_batch_tokens: config.maxBatchTokens,
        max_batch_requests: config.maxBatchSequences,
        max_client_batch_size: config.maxInputs,
        auto_truncate: config.truncate,
        tokenization_workers: 1,
        version,
        sha: null,
        docker_label: null,
      };
    },
  );
};
