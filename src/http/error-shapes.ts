import { randomUUID } from "node:crypto";
import { Type } from "@sinclair/typebox";
import type { ApiError } from "./errors.js";
import { ErrorSchema } from "./schemas.js";

/**
 * One catalog of errors (`errors.ts`), answered in the shape of the API a route belongs to: the clients of
 * each API read their own. A route names its shape in its config (`errorShape`); routes that name none
 * answer OpenAI's.
 *
 * - OpenAI: `{error: {message, type, param, code}}` with the catalog's status.
 * - text-embeddings-inference (router/src/http/server.rs): `{error, error_type}`; 413 `validation` for
 *   too many inputs or tokens, 400 `empty`, 422 `tokenizer` for bad token ids, 424 `backend` for an
 *   output the model cannot give, 429 `overloaded` for a full queue, 503 `unhealthy` while loading or
 *   stopping. A body TEI's JSON extractor would refuse (a bad field) is its 422, here with `validation`.
 * - Cohere: `{id, message}` with the catalog's status, but 429 for a full queue (its rate limit).
 */
export type ErrorShape = "openai" | "tei" | "cohere";

export interface ErrorAnswer {
  readonly status: number;
  readonly body: object;
}

/** Catalog codes that are TEI's 413: the request is larger than a limit. */
const TEI_TOO_LARGE = new Set([
  "too_many_inputs",
  "request_too_large",
  "context_length_exceeded",
  "output_too_large",
  "payload_too_large",
]);

function teiAnswer(error: ApiError): ErrorAnswer {
  const answer = (status: number, errorType: string) => ({ status, body: { error: error.message, error_type: errorType } });
  const code = error.code ?? "";
  if (TEI_TOO_LARGE.has(code)) return answer(413, "validation");
  if (code === "empty_input" || code === "empty_body") return answer(400, "empty");
  if (code === "invalid_token_id") return answer(422, "tokenizer");
  if (code.endsWith("_unavailable")) return answer(424, "backend");
  if (code === "server_overloaded") return answer(429, "overloaded");
  if (code === "model_not_ready" || code === "shutting_down") return answer(503, "unhealthy");
  if (error.statusCode === 401) return answer(401, "unauthorized");
  if (error.statusCode === 415) return answer(415, "validation");
  if (error.statusCode >= 500) return answer(error.statusCode, "backend");
  return answer(422, "validation");
}

function cohereAnswer(error: ApiError): ErrorAnswer {
  const status = error.code === "server_overloaded" ? 429 : error.statusCode;
  return { status, body: { id: randomUUID(), message: error.message } };
}

export function errorAnswer(error: ApiError, shape: ErrorShape): ErrorAnswer {
  if (shape === "tei") return teiAnswer(error);
  if (shape === "cohere") return cohereAnswer(error);
  return { status: error.statusCode, body: error.toBody() };
}

export const TeiErrorSchema = Type.Object(
  { error: Type.String(), error_type: Type.String({ description: "validation, empty, tokenizer, backend, overloaded, unhealthy" }) },
  { description: "text-embeddings-inference's error." },
);

export const CohereErrorSchema = Type.Object({ id: Type.String(), message: Type.String() }, { description: "Cohere's error." });

/** The error responses of a route's schema, in its shape (Fastify serialises error bodies with them). */
export function errorResponses(shape: ErrorShape) {
  const schema = shape === "tei" ? TeiErrorSchema : shape === "cohere" ? CohereErrorSchema : ErrorSchema;
  return { "4xx": schema, "5xx": schema };
}
