import t from "tap";
import { loadConfig } from "../src/config/load.js";
import { buildApp } from "../src/http/app.js";
import { Metrics } from "../src/metrics/metrics.js";
import { ServiceState } from "../src/service/state.js";
import { TINY, testModel } from "./helpers/models.js";
import { startTestServer } from "./support/app.js";

const modelPath = await testModel(TINY);

t.test("API_KEY: every route but /health needs one of the keys", async (t) => {
  const server = await startTestServer(modelPath, { API_KEY: "key-one,key-two" });
  t.teardown(() => server.close());
  const call = (method: "GET" | "POST", url: string, key?: string) =>
    server.app.inject({
      method,
      url,
      payload: method === "POST" ? { input: "hi" } : undefined,
      headers: key === undefined ? {} : { authorization: key },
    });
  for (const [method, url] of [["POST", "/v1/embeddings"], ["GET", "/v1/models"], ["GET", "/v1/models/bge-m3"], ["POST", "/v1/chat/completions"]] as const) {
    const none = await call(method, url);
    t.equal(none.statusCode, 401, `${url} without a key`);
    t.equal(none.json().error.type, "authentication_error");
    t.equal(none.json().error.code, "invalid_api_key");
    t.equal((await call(method, url, "Bearer wrong")).statusCode, 401, `${url} with a wrong key`);
    t.equal((await call(method, url, "key-one")).statusCode, 401, `${url} without the Bearer scheme`);
    t.equal((await call(method, url, "Bearer key-one")).statusCode, 200, `${url} with the first key`);
    t.equal((await call(method, url, "Bearer key-two")).statusCode, 200, `${url} with the second key`);
  }
  t.equal((await call("GET", "/health")).statusCode, 200, "health stays open for probes");
  const embedded = await call("POST", "/v1/embeddings", "Bearer key-two");
  t.equal(embedded.json().data[0].embedding.length, server.service.embedder.info.dimensions, "a real answer, not a 500");
});

t.test("ROUTE_PREFIX moves every route", async (t) => {
  const server = await startTestServer(modelPath, { ROUTE_PREFIX: "/api/" });
  t.teardown(() => server.close());
  const prefixed = await server.app.inject({ method: "POST", url: "/api/v1/embeddings", payload: { input: "hi" } });
  t.equal(prefixed.statusCode, 200);
  t.equal((await server.app.inject({ method: "GET", url: "/api/health" })).statusCode, 200);
  t.equal((await server.app.inject({ method: "GET", url: "/api/v1/models" })).statusCode, 200);
  const bare = await server.app.inject({ method: "POST", url: "/v1/embeddings", payload: { input: "hi" } });
  t.equal(bare.statusCode, 404);
  t.equal(bare.json().error.type, "not_found_error");
});

t.test("health is 503 until the model is loaded", async (t) => {
  const app = await appWithoutModel();
  t.teardown(() => app.close());
  const health = await app.inject({ method: "GET", url: "/health" });
  t.equal(health.statusCode, 503);
  t.equal(health.json().status, "loading");
  t.equal(health.json().error.type, "service_unavailable");
  t.ok(health.headers["retry-after"]);
  const early = await app.inject({ method: "POST", url: "/v1/embeddings", payload: { input: "hi" } });
  t.equal(early.statusCode, 503);
  t.equal(early.json().error.code, "model_not_ready");
});

/** The HTTP layer alone, no model: for what does not reach the engine (auth, CORS, docs). */
async function appWithoutModel(env: Record<string, string> = {}) {
  const app = await buildApp({ config: loadConfig({ LOG_LEVEL: "silent", ...env }, []), state: new ServiceState(), metrics: new Metrics(), logger: false });
  return app;
}

t.test("/docs: the OpenAPI description from the route schemas, behind the key unless DOCS_PUBLIC", async (t) => {
  const open = await appWithoutModel();
  t.teardown(() => open.close());
  const spec = await open.inject({ method: "GET", url: "/docs/json" });
  t.equal(spec.statusCode, 200);
  const body = spec.json();
  t.ok(body.paths["/v1/embeddings"].post.requestBody.content["application/json"].schema.properties.input);
  t.ok(body.paths["/health"]);
  const requestFields = (path: string) => Object.keys(body.paths[path].post.requestBody.content["application/json"].schema.properties);
  t.match(requestFields("/embed"), ["inputs", "normalize", "truncate", "truncation_direction", "prompt_name", "dimensions"], "TEI's /embed from its schema");
  t.match(requestFields("/v2/embed"), ["model", "input_type", "texts", "images", "inputs", "embedding_types"], "Cohere's /v2/embed from its schema");
  for (const path of ["/", "/embed_all", "/tokenize", "/decode", "/v1/embed", "/v2/rerank"]) t.ok(body.paths[path]?.post, `${path} is described`);
  t.ok(body.paths["/info"]?.get, "/info is described");
  t.ok(body.paths["/embed"].post.responses["413"] ?? body.paths["/embed"].post.responses["4XX"], "with TEI's error shape");
  t.ok((await open.inject({ method: "GET", url: "/docs" })).statusCode < 400);

  const keyed = await appWithoutModel({ API_KEY: "k", ROUTE_PREFIX: "/api" });
  t.teardown(() => keyed.close());
  for (const url of ["/api/docs", "/api/docs/json"]) {
    const none = await keyed.inject({ method: "GET", url });
    t.equal(none.statusCode, 401, `${url} without the key`);
    t.equal(none.json().error.code, "invalid_api_key");
  }
  t.equal((await keyed.inject({ method: "GET", url: "/api/docs/json", headers: { authorization: "Bearer k" } })).statusCode, 200);

  const published = await appWithoutModel({ API_KEY: "k", DOCS_PUBLIC: "true" });
  t.teardown(() => published.close());
  t.equal((await published.inject({ method: "GET", url: "/docs/json" })).statusCode, 200, "DOCS_PUBLIC serves it without the key");
  t.equal((await published.inject({ method: "POST", url: "/v1/embeddings", payload: { input: "x" } })).statusCode, 401, "the rest still needs it");
});

t.test("CORS is open by default and can be restricted", async (t) => {
  const open = await appWithoutModel();
  t.teardown(() => open.close());
  const preflight = await open.inject({
    method: "OPTIONS",
    url: "/v1/embeddings",
    headers: { origin: "https://app.example", "access-control-request-method": "POST" },
  });
  t.equal(preflight.headers["access-control-allow-origin"], "*");
  const closed = await appWithoutModel({ CORS_ORIGINS: "https://ok.example" });
  t.teardown(() => closed.close());
  const allowed = await closed.inject({ method: "GET", url: "/health", headers: { origin: "https://ok.example" } });
  t.equal(allowed.headers["access-control-allow-origin"], "https://ok.example");
  const denied = await closed.inject({ method: "GET", url: "/health", headers: { origin: "https://evil.example" } });
  t.notOk(denied.headers["access-control-allow-origin"]);
});
