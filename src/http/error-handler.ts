import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifySchemaValidationError } from "fastify";
import fp from "fastify-plugin";
import {
  CapacityError,
  ClientGoneError,
  InputError,
  NonFiniteEmbeddingError,
  OutputUnavailableError,
  RequestTimeoutError,
  ShuttingDownError,
} from "../embedding/errors.js";
import { errorAnswer } from "./error-shapes.js";
import { ApiError, errors } from "./errors.js";

/** `/input/3/1` -> `input[3][1]`, the way OpenAI names parameters. */
function paramName(instancePath: string, missingProperty?: string): string | null {
  const parts = instancePath.split("/").filter(Boolean);
  if (missingProperty) parts.push(missingProperty);
  if (parts.length === 0) return null;
  return parts.map((part, i) => (i > 0 && /^\d+$/.test(part) ? `[${part}]` : i > 0 ? `.${part}` : part)).join("");
}

function fromValidation(validation: FastifySchemaValidationError[], context: string): ApiError {
  const [first] = validation;
  const missing = (first.params as { missingProperty?: string }).missingProperty;
  const param = paramName(first.instancePath, missing);
  if ((param === "input" || param?.startsWith("input[")) && !missing) {
    return errors.invalidRequest(
      "Invalid 'input': expected a string, an array of strings, an array of integer token ids, " +
        "or an array of arrays of integer token ids.",
      "input",
      "invalid_type",
    );
  }
  const allowed = (first.params as { allowedValues?: unknown[] }).allowedValues;
  const detail = allowed ? `${first.message}: ${allowed.map((v) => JSON.stringify(v)).join(", ")}` : first.message;
  const subject = param ? `'${param}'` : `request ${context}`;
  return errors.invalidRequest(`Invalid ${subject}: ${detail}.`, param, "invalid_value");
}

/** Maps anything thrown while serving a request to the API's error catalog. */
export function toApiError(error: unknown, bodyLimit: number): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof InputError) return errors.invalidRequest(error.message, error.param, error.code);
  if (error instanceof CapacityError) return errors.overloaded(`The server is at capacity: ${error.message}. Retry shortly.`, 1);
  // never retryable: this server cannot give the output (the heads were not loaded, or the engine lacks them)
  if (error instanceof OutputUnavailableError) return errors.invalidRequest(error.message, null, `${error.output}_unavailable`);
  if (error instanceof NonFiniteEmbeddingError) return errors.nonFiniteEmbedding(error.message, error.param);
  if (error instanceof ShuttingDownError) return errors.shuttingDown();
  if (error instanceof RequestTimeoutError) return errors.timeout(error.timeoutMs);
  const fastifyError = error as Partial<FastifyError>;
  if (fastifyError.validation) return fromValidation(fastifyError.validation, fastifyError.validationContext ?? "body");
  switch (fastifyError.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return errors.payloadTooLarge(bodyLimit);
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return errors.unsupportedMediaType(undefined);
  }
  const status = fastifyError.statusCode ?? 500;
  if (status >= 400 && status < 500) {
    return new ApiError(status, "invalid_request_error", fastifyError.message ?? "Bad request.", null, fastifyError.code ?? null);
  }
  return errors.internal();
}

/** Answers `apiError` in the shape of the API the request's route belongs to (its `errorShape`), Retry-After included. */
export function sendApiError(request: FastifyRequest, reply: FastifyReply, apiError: ApiError, extra: Record<string, unknown> = {}): FastifyReply {
  const { status, body } = errorAnswer(apiError, request.routeOptions.config.errorShape ?? "openai");
  if (apiError.retryAfter !== undefined) reply.header("retry-after", String(apiError.retryAfter));
  return reply.code(status).send({ ...extra, ...body });
}

export const errorHandlerPlugin = fp<{ bodyLimit: number }>(async (app: FastifyInstance, { bodyLimit }) => {
  app.setErrorHandler((error, request, reply) => {
    if (error instanceof ClientGoneError) {
      // The client is gone; there is nobody to answer.
      request.log.info("client disconnected; its queued inputs were dropped");
      return reply.code(499).send();
    }
    const apiError = toApiError(error, bodyLimit);
    if (apiError.statusCode >= 500 && apiError.type === "server_error") {
      request.log.error({ err: error }, "request failed");
    }
    return sendApiError(request, reply, apiError);
  });
  app.setNotFoundHandler((request, reply) => {
    const apiError = errors.notFound(`Unknown route: ${request.method} ${request.url.split("?")[0]}`, "unknown_route");
    return reply.code(404).send(apiError.toBody());
  });
});
