#!/usr/bin/env node
/**
 * Container health probe (the images' HEALTHCHECK): GET http://127.0.0.1:$PORT$ROUTE_PREFIX/health and
 * exit 0 on 200, 1 on anything else (503 while the model loads, a refused connection, a timeout).
 * No dependencies and no TypeScript, so it starts in a few milliseconds without tsx.
 *
 * Environment: PORT (default 8000), ROUTE_PREFIX (default ""), HEALTHCHECK_TIMEOUT_MS (default 4000).
 * /health needs no API key, so API_KEY is not read.
 */
import http from "node:http";

const port = Number.parseInt(process.env.PORT ?? "", 10) || 8000;
// the server strips trailing slashes from ROUTE_PREFIX ("/api/" serves /api/health); so do we
const prefix = (process.env.ROUTE_PREFIX ?? "").trim().replace(/\/+$/, "");
const timeoutMs = Number.parseInt(process.env.HEALTHCHECK_TIMEOUT_MS ?? "", 10) || 4000;
const url = `http://127.0.0.1:${port}${prefix}/health`;

function done(code, message) {
  (code === 0 ? process.stdout : process.stderr).write(`${message}\n`);
  process.exit(code);
}

const request = http.get(url, { timeout: timeoutMs, headers: { accept: "application/json" } }, (response) => {
  let body = "";
  response.setEncoding("utf8");
  response.on("data", (chunk) => {
    if (body.length < 512) body += chunk;
  });
  response.on("end", () => {
    const summary = `${url}: ${response.statusCode} ${body.slice(0, 200).trim()}`;
    done(response.statusCode === 200 ? 0 : 1, summary);
  });
  response.on("error", (error) => done(1, `${url}: ${error.message}`));
});
request.on("timeout", () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
request.on("error", (error) => done(1, `${url}: ${error.message}`));
