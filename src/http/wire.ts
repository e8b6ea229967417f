import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { FastifyInstance } from "fastify";
import secureJson from "secure-json-parse";
import { ApiError, errors } from "./errors.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * JSON bodies, parsed as Fastify's own parser does (secure-json-parse: a `__proto__` or `constructor.prototype`
 * key is refused, never merged), with two differences that keep the client's error useful: invalid UTF-8 is
 * refused (rather than silently embedding U+FFFD), and every failure, a stack overflow on absurdly deep
 * nesting included, is the client's 400 with the reason, never a 500.
 */
export function registerJsonParser(app: FastifyInstance): void {
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (_request, body: Buffer, done) => {
    let text: string;
    try {
      text = utf8.decode(body);
    } catch {
      done(errors.invalidRequest("The request body is not valid UTF-8.", null, "invalid_encoding"), undefined);
      return;
    }
    if (text.trim().length === 0) {
      done(errors.invalidRequest("The request body is empty; send a JSON object.", null, "empty_body"), undefined);
      return;
    }
    try {
      done(null, secureJson.parse(text, undefined, { protoAction: "error", constructorAction: "error" }));
    } catch (error) {
      const reason = error instanceof RangeError ? "it is nested too deeply" : (error as Error).message;
      done(errors.invalidRequest(`The request body is not valid JSON: ${reason}`, null, "invalid_json"), undefined);
    }
  });
}

/**
 * Requests Node's HTTP parser rejects before Fastify sees them (bad headers, broken framing) still get
 * an OpenAI-shaped error, then the connection is closed.
 */
export function clientErrorHandler(error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  const apiError =
    error.code === "HPE_HEADER_OVERFLOW"
      ? new ApiError(431, "invalid_request_error", "Request headers are too large.", null, "headers_too_large")
      : error.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? new ApiError(408, "invalid_request_error", "The request was not received in time.", null, "request_timeout")
        : errors.invalidRequest(`Malformed HTTP request (${error.code ?? "parse error"}).`, null, "malformed_request");
  const body = JSON.stringify(apiError.toBody());
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${apiError.statusCode} ${STATUS_CODES[apiError.statusCode]}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
