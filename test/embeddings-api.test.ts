import t from "tap";
import { TINY, testModel } from "./helpers/models.js";
import { cosine, decodeBase64Vector, startTestServer, type TestServer } from "./support/app.js";

const modelPath = await testModel(TINY);
const server = await startTestServer(modelPath);
t.teardown(() => server.close());

interface EmbeddingsBody {
  object: string;
  data: { object: string; index: number; embedding: number[] | string }[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

async function embed(payload: unknown, target: TestServer = server, headers: Record<string, string> = {}) {
  const response = await target.app.inject({ method: "POST", url: `${target.config.routePrefix}/v1/embeddings`, payload: payload as object, headers });
  return { status: response.statusCode, body: response.json() as EmbeddingsBody & { error: Record<string, unknown> }, headers: response.headers };
}

async function vectorOf(input: unknown): Promise<number[]> {
  const { status, body } = await embed({ input });
  if (status !== 200) throw new Error(JSON.stringify(body));
  return body.data[0].embedding as number[];
}

const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
const dim = server.service.embedder.info.dimensions;

t.test("a string gives one unit vector in OpenAI's shape", async (t) => {
  const { status, body } = await embed({ input: "Hello world" });
  t.equal(status, 200);
  t.equal(body.object, "list");
  t.equal(body.model, "bge-m3");
  t.equal(body.data.length, 1);
  t.same(Object.keys(body.data[0]).sort(), ["embedding", "index", "object"]);
  t.equal(body.data[0].object, "embedding");
  t.equal(body.data[0].index, 0);
  const vector = body.data[0].embedding as number[];
  t.equal(vector.length, dim);
  t.ok(Math.abs(norm(vector) - 1) < 1e-5, "L2-normalised");
  // "Hello world" is <s> Hello world </s> in XLM-R's vocabulary: 4 tokens, specials counted.
  t.same(body.usage, { prompt_tokens: 4, total_tokens: 4 });
});

t.test("the model field is echoed; user and unknown fields are ignored", async (t) => {
  const { status, body } = await embed({ input: "x", model: "text-embedding-3-small", user: "u1", extra: { a: 1 } });
  t.equal(status, 200);
  t.equal(body.model, "text-embedding-3-small");
});

t.test("a list keeps its order and each item matches its single embedding", async (t) => {
  const texts = ["first text", "second, longer text about embeddings", "third", "Ünïcödé 文字 🚀"];
  const { status, body } = await embed({ input: texts });
  t.equal(status, 200);
  t.same(body.data.map((d) => d.index), [0, 1, 2, 3]);
  for (const [i, text] of texts.entries()) {
    t.ok(cosine(body.data[i].embedding as number[], await vectorOf(text)) > 0.9999, `item ${i}`);
  }
  t.ok(cosine(body.data[0].embedding as number[], body.data[1].embedding as number[]) < 0.9999, "different texts differ");
});

t.test("token ids give the same vector as the text, with or without <s> and </s>", async (t) => {
  const [tokens] = await server.service.embedder.tokenize(["Hello world"]);
  const ids = Array.from(tokens);
  t.same(ids, [0, 35378, 8999, 2]);
  const fromText = await vectorOf("Hello world");
  t.ok(cosine(await vectorOf(ids), fromText) > 0.99999, "with specials");
  t.ok(cosine(await vectorOf(ids.slice(1, -1)), fromText) > 0.99999, "wrapped by the server");
  const { body } = await embed({ input: [ids.slice(1, -1), ids] });
  t.equal(body.data.length, 2);
  t.equal(body.usage.prompt_tokens, 8);
  t.ok(cosine(body.data[0].embedding as number[], body.data[1].embedding as number[]) > 0.99999);
});

t.test("base64 is the float32 vector, little-endian", async (t) => {
  const floats = await vectorOf("base64 check");
  const { body } = await embed({ input: "base64 check", encoding_format: "base64" });
  const decoded = decodeBase64Vector(body.data[0].embedding as string);
  t.equal(decoded.length, dim);
  t.same(Array.from(decoded), floats);
});

t.test("dimensions cuts the vector and renormalises it", async (t) => {
  const full = await vectorOf("matryoshka");
  const { status, body } = await embed({ input: "matryoshka", dimensions: 16 });
  t.equal(status, 200);
  const short = body.data[0].embedding as number[];
  t.equal(short.length, 16);
  t.ok(Math.abs(norm(short) - 1) < 1e-5);
  t.ok(cosine(short, full.slice(0, 16)) > 0.99999);
  const { body: b64 } = await embed({ input: "matryoshka", dimensions: 16, encoding_format: "base64" });
  t.equal(decodeBase64Vector(b64.data[0].embedding as string).length, 16);
});

t.test("concurrent requests each get their own vectors", async (t) => {
  const texts = Array.from({ length: 12 }, (_, i) => `concurrent request number ${i} ${"x ".repeat(i)}`);
  const singles = await Promise.all(texts.map((text) => vectorOf(text)));
  const batched = await Promise.all(texts.map((text, i) => embed({ input: [text, texts[(i + 1) % texts.length]] })));
  batched.forEach(({ body }, i) => {
    t.ok(cosine(body.data[0].embedding as number[], singles[i]) > 0.9999, `request ${i} first`);
    t.ok(cosine(body.data[1].embedding as number[], singles[(i + 1) % texts.length]) > 0.9999, `request ${i} second`);
  });
});

t.test("bad input gets a 400 in OpenAI's shape naming the parameter", async (t) => {
  const nVocab = server.service.embedder.info.nVocab;
  const cases: [unknown, string | null, RegExp][] = [
    [{}, "input", /input/],
    [{ input: "" }, "input", /empty/],
    [{ input: [] }, "input", /empty array/],
    [{ input: ["a", ""] }, "input[1]", /empty/],
    [{ input: [[1, 2], []] }, "input[1]", /empty/],
    [{ input: ["a", 1] }, "input", /expected a string/],
    [{ input: 5 }, "input", /expected a string/],
    [{ input: null }, "input", /expected a string/],
    [{ input: [1.5, 2] }, "input", /integer/],
    [{ input: [[5, nVocab]] }, "input[0]", new RegExp(`\\[0, ${nVocab}\\)`)],
    [{ input: [5, -1] }, "input", /Invalid token id -1/],
    [{ input: [[1], [2, 1e12]] }, "input[1]", /Invalid token id/],
    [{ input: "x", encoding_format: "hex" }, "encoding_format", /float.*base64/],
    [{ input: "x", dimensions: 0 }, "dimensions", /dimensions/],
    [{ input: "x", dimensions: dim + 1 }, "dimensions", new RegExp(`${dim}`)],
    [{ input: "x", dimensions: "8" }, "dimensions", /dimensions/],
    [{ input: "x", truncate: "yes" }, "truncate", /truncate/],
    [["not", "an", "object"], null, /object/],
  ];
  for (const [payload, param, message] of cases) {
    const { status, body } = await embed(payload);
    t.equal(status, 400, JSON.stringify(payload));
    t.equal(body.error.type, "invalid_request_error");
    t.equal(body.error.param, param, JSON.stringify(payload));
    t.match(body.error.message, message, JSON.stringify(payload));
    t.ok("code" in body.error);
  }
  const { status } = await embed({ input: "still alive" });
  t.equal(status, 200, "the server is still up");
});

t.test("malformed JSON, wrong content type and empty bodies are 4xx", async (t) => {
  const url = "/v1/embeddings";
  const broken = await server.app.inject({ method: "POST", url, payload: '{"input": "x"', headers: { "content-type": "application/json" } });
  t.equal(broken.statusCode, 400);
  t.equal(broken.json().error.type, "invalid_request_error");
  const empty = await server.app.inject({ method: "POST", url, payload: "", headers: { "content-type": "application/json" } });
  t.equal(empty.statusCode, 400);
  const text = await server.app.inject({ method: "POST", url, payload: "input=x", headers: { "content-type": "application/x-www-form-urlencoded" } });
  t.equal(text.statusCode, 415);
  t.equal(text.json().error.type, "invalid_request_error");
});

t.test("unknown routes are 404 in OpenAI's shape", async (t) => {
  const response = await server.app.inject({ method: "GET", url: "/v1/nothing" });
  t.equal(response.statusCode, 404);
  t.equal(response.json().error.type, "not_found_error");
});

t.test("models, health and the gateway channel test", async (t) => {
  const list = await server.app.inject({ method: "GET", url: "/v1/models" });
  t.equal(list.statusCode, 200);
  t.equal(list.json().object, "list");
  t.equal(list.json().data[0].id, "bge-m3");
  t.equal(list.json().data[0].object, "model");
  const one = await server.app.inject({ method: "GET", url: "/v1/models/bge-m3" });
  t.equal(one.json().id, "bge-m3");
  const missing = await server.app.inject({ method: "GET", url: "/v1/models/gpt-4" });
  t.equal(missing.statusCode, 404);
  t.equal(missing.json().error.code, "model_not_found");
  const health = await server.app.inject({ method: "GET", url: "/health" });
  t.equal(health.statusCode, 200);
  const { heads_unavailable: headsUnavailable, ...rest } = health.json();
  t.same(rest, { status: "ok", model: "bge-m3", engine: server.service.engine, device: "cpu", outputs: ["dense"] });
  // test servers run without heads; ENGINE=node-llama-cpp says first that it could not run them anyway
  t.match(headsUnavailable, /^(M3_HEADS is none: the sparse and ColBERT heads are off|the node-llama-cpp engine runs no heads)$/);
  const chat = await server.app.inject({ method: "POST", url: "/v1/chat/completions", payload: { messages: [] } });
  t.equal(chat.statusCode, 200);
  t.equal(chat.body, "");
});

/** One server for the settings below (a model load each costs seconds on node-llama-cpp): a 32-token context, TRUNCATE on. */
let limitedServer: Promise<TestServer> | undefined;
const limited = () => (limitedServer ??= startTestServer(modelPath, { CONTEXT_SIZE: "32", TRUNCATE: "true", MAX_INPUTS: "3", BODY_LIMIT: "2048" }));
t.teardown(async () => (await limitedServer)?.close());

t.test("long inputs: 400 naming both lengths, or truncated with </s> kept", async (t) => {
  // TRUNCATE is off by default: an input over the context is refused (ids: a text that long would
  // start node-llama-cpp's tokenizer thread, seconds of vocabulary loading)
  const overContext = await embed({ input: [[100, 101], Array(8200).fill(100)] });
  t.equal(overContext.status, 400);
  t.equal(overContext.body.error.param, "input[1]");
  t.match(overContext.body.error.message, /8202 tokens.*context of 8192 tokens/);
  const small = await limited();
  const long = "word ".repeat(100);
  const refused = await embed({ input: ["short", long], truncate: false }, small);
  t.equal(refused.status, 400, "a request can turn TRUNCATE off");
  t.equal(refused.body.error.param, "input[1]");
  t.match(refused.body.error.message, /102 tokens.*context of 32 tokens/);
  t.equal((await embed({ input: long }, small)).body.usage.prompt_tokens, 32, "TRUNCATE=true cuts by default");
  const cut = await embed({ input: long, truncate: true }, small);
  t.equal(cut.status, 200);
  t.equal(cut.body.usage.prompt_tokens, 32);
  const [tokens] = await small.service.embedder.tokenize([long]);
  const manual = [...Array.from(tokens.slice(0, 31)), 2];
  const manualVector = (await embed({ input: manual }, small)).body.data[0].embedding as number[];
  t.ok(cosine(cut.body.data[0].embedding as number[], manualVector) > 0.99999, "cut to 31 tokens + </s>");
});

t.test("MAX_INPUTS and BODY_LIMIT", async (t) => {
  const small = await limited();
  const many = await embed({ input: ["a", "b", "c", "d"] }, small);
  t.equal(many.status, 400);
  t.match(many.body.error.message, /at most 3/);
  const big = await embed({ input: "y".repeat(5000) }, small);
  t.equal(big.status, 413);
  t.equal(big.body.error.type, "invalid_request_error");
});
