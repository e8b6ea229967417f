/**
 * The one catalog of errors the API answers with, in OpenAI's shape
 * (`{error: {message, type, param, code}}`). Everything that fails a request ends up as one of these.
 */

export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "not_found_error"
  | "server_error"
  | "service_unavailable"
  | "timeout_error";

export interface OpenAIErrorBody {
  error: { message: string; type: ErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly statusCode: number,
    readonly type: ErrorType,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    /** Seconds a client should wait before retrying (sent as Retry-After). */
    readonly retryAfter?: number,
  ) {
    super(message);
  }

  toBody(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const errors = {
  invalidRequest: (message: string, param: string | null = null, code: string | null = null) =>
    new ApiError(400, "invalid_request_error", message, param, code),
  unauthorized: (message = "Incorrect or missing API key. Send it as 'Authorization: Bearer <key>'.") =>
    new ApiError(401, "authentication_error", message, null, "invalid_api_key"),
  notFound: (message: string, code: string | null = "not_found") =>
    new ApiError(404, "not_found_error", message, null, code),
  payloadTooLarge: (limit: number) =>
    new ApiError(413, "invalid_request_error", `Request body is larger than the limit of ${limit} bytes.`, null, "payload_too_large"),
  unsupportedMediaType: (type: string | undefined) =>
    new ApiError(415, "invalid_request_error", `Unsupported Content-Type ${JSON.stringify(type ?? "")}; send application/json.`, null, "unsupported_media_type"),
  overloaded: (message: string, retryAfter: number) =>
    new ApiError(503, "service_unavailable", message, null, "server_overloaded", retryAfter),
  notReady: () =>
    new ApiError(503, "service_unavailable", "The model is still loading; try again shortly.", null, "model_not_ready", 5),
  shuttingDown: () =>
    new ApiError(503, "service_unavailable", "The server is shutting down.", null, "shutting_down", 1),
  timeout: (ms: number) =>
    new ApiError(504, "timeout_error", `The request did not finish within ${ms} ms.`, null, "request_timeout"),
  internal: () => new ApiError(500, "server_error", "The server had an error while processing your request.", null, null),
  nonFiniteEmbedding: (message: string, param: string) => new ApiError(500, "server_error", message, param, "non_finite_embedding"),
};
