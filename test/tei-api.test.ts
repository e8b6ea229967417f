// text-embeddings-inference's API through the real server: Hugging Face's own client (@huggingface/inference,
// feature extraction on an endpoint URL, which posts to the server's root as TEI routes it), every TEI route's
// values against /v1/embeddings, and errors in TEI's shape with TEI's status codes.
import type { AddressInfo } from "node:net";
import { InferenceClient, InferenceClientProviderApiError } from "@huggingface/inference";
import t from "tap";
import { TINY, testModel } from "./helpers/models.js";
import { startTestServer, type TestServer } from "./support/app.js";

const CONTEXT = 64;
const server = await startTestServer(await testModel(TINY), {
  API_KEY: "sk-test",
  CONTEXT_SIZE: String(CONTEXT),
  MAX_INPUTS: "8",
  MAX_QUEUE: "8",
  MAX_BATCH_SEQUENCES: "1",
});
await server.app.listen({ host: "127.0.0.1", port: 0 });
t.teardown(() => server.close());
const base = `http://127.0.0.1:${(server.app.server.address() as AddressInfo).port}`;
const client = new InferenceClient("sk-test");

const TEXTS = ["What is BGE-M3?", "Une phrase en français, avec des accents : é è à.", "多语言嵌入模型"];

async function post(url: string, payload: unknown, target: TestServer = server) {
  const response = await target.app.inject({ method: "POST", url, payload: payload as object, headers: { authorization: "Bearer sk-test" } });
  return { status: response.statusCode, body: response.json(), headers: response.headers };
}

const openAiVectors = async (input: unknown, extra: object = {}) => {
  const { body } = await post("/v1/embeddings", { input, ...extra });
  return { vectors: body.data.map((item: { embedding: number[] }) => item.embedding) as number[][], tokens: body.usage.prompt_tokens as number };
};

t.test("Hugging Face's client gets the vectors /v1/embeddings gives, from the root and from /embed", async (t) => {
  const expected = (await openAiVectors(TEXTS)).vectors;
  const fromRoot = await client.featureExtraction({ endpointUrl: base, inputs: TEXTS });
  t.same(fromRoot, expected, "POST / (TEI serves /embed there for an embedding model)");
  const fromEmbed = await client.featureExtraction({ endpointUrl: `${base}/embed`, inputs: TEXTS[0] });
  t.same(fromEmbed, [expected[0]], "POST /embed with one string: one vector");
  const raw = (await client.featureExtraction({ endpointUrl: `${base}/embed`, inputs: TEXTS[1], normalize: false })) as number[][];
  const norm = Math.hypot(...raw[0]);
  t.ok(Math.abs(norm - 1) > 1e-3, `normalize: false returns the pooled vector as the model gives it (norm ${norm.toFixed(3)})`);
  t.ok(raw[0].every((x, i) => Math.abs(x / norm - expected[1][i]) < 1e-6), "which, scaled to unit length, is the normalised vector");
});

t.test("/embed: token ids, dimensions, truncation_direction Left keeps the end", async (t) => {
  const ids = [[35378, 83, 10], [6, 5, 4, 3000]];
  t.same((await post("/embed", { inputs: ids })).body, (await openAiVectors(ids)).vectors, "token ids as /v1/embeddings takes them");
  t.same((await post("/embed", { inputs: TEXTS, dimensions: 16 })).body, (await openAiVectors(TEXTS, { dimensions: 16 })).vectors, "dimensions");

  const long = `${"filler words that will be cut away ".repeat(20)}and the end that matters`;
  const [tokens] = (await post("/tokenize", { inputs: long })).body as { id: number }[][];
  t.ok(tokens.length > CONTEXT, `${tokens.length} tokens, over the context of ${CONTEXT}`);
  const all = tokens.map((token) => token.id);
  const tooLong = await post("/embed", { inputs: long });
  t.equal(tooLong.status, 413, "over the context without truncate: TEI's 413");
  t.same(Object.keys(tooLong.body).sort(), ["error", "error_type"]);
  t.equal(tooLong.body.error_type, "validation");
  const keptEnd = [all[0], ...all.slice(all.length - (CONTEXT - 1))];
  const keptStart = [...all.slice(0, CONTEXT - 1), all[all.length - 1]];
  const [left] = (await post("/embed", { inputs: long, truncate: true, truncation_direction: "Left" })).body;
  const [right] = (await post("/embed", { inputs: long, truncate: true, truncation_direction: "right" })).body;
  t.same(left, (await openAiVectors(keptEnd)).vectors[0], "Left: <s> and the last tokens, </s> included");
  t.same(right, (await openAiVectors(keptStart)).vectors[0], "Right: the first tokens and </s>");
  const viaClient = await client.featureExtraction({ endpointUrl: `${base}/embed`, inputs: long, truncate: true, truncation_direction: "left" });
  t.same(viaClient, [left], "Hugging Face's client's lowercase 'left'");
});

t.test("/tokenize: ids as /v1/embeddings counts them, spans in UTF-8 bytes; /decode spells them back", async (t) => {
  const { status, body } = await post("/tokenize", { inputs: TEXTS });
  t.equal(status, 200);
  const tokenized = body as { id: number; text: string; special: boolean; start: number | null; stop: number | null }[][];
  t.equal(tokenized.flat().length, (await openAiVectors(TEXTS)).tokens, "as many tokens as usage.prompt_tokens counts");
  for (const [i, tokens] of tokenized.entries()) {
    const ids = tokens.map((token) => token.id);
    t.same((await openAiVectors([ids])).vectors[0], (await openAiVectors(TEXTS[i])).vectors[0], `text ${i}: these ids are what the model embeds`);
    t.same([tokens[0].special, tokens.at(-1)!.special], [true, true], `text ${i}: <s> and </s> are special`);
    t.same([tokens[0].text, tokens.at(-1)!.text, tokens[0].start], ["<s>", "</s>", null]);
    const bytes = Buffer.from(TEXTS[i]);
    for (const token of tokens.slice(1, -1)) {
      t.equal(token.special, false);
      t.equal(bytes.subarray(token.start!, token.stop!).toString(), token.text, `text ${i}: '${token.text}' is the input's bytes [${token.start}, ${token.stop})`);
    }
    t.equal(tokens.slice(1, -1).map((token) => token.text).join("").trim(), TEXTS[i], `text ${i}: the spans cover the input`);
    const decoded = (await post("/decode", { ids })).body;
    t.same(decoded, [TEXTS[i]], `text ${i}: /decode spells the input back`);
  }
  const plain = (await post("/tokenize", { inputs: "hello world", add_special_tokens: false })).body[0];
  const texts = plain.map((token: { text: string }) => token.text);
  t.equal(texts.join(""), "hello world", "add_special_tokens: false: no <s>, no </s>");
  t.equal(texts.at(-1), " world", "a word's span holds the space before it, as Hugging Face's tokenizers count it");
  const kept = (await post("/decode", { ids: [[0, ...plain.map((token: { id: number }) => token.id), 2]], skip_special_tokens: false })).body;
  t.same(kept, ["<s> hello world</s>"], "skip_special_tokens: false keeps <s> and </s> (the word marker after <s> a space, as Hugging Face decodes it)");
});

t.test("/info describes the model and the limits", async (t) => {
  const response = await server.app.inject({ url: "/info", headers: { authorization: "Bearer sk-test" } });
  const info = response.json();
  t.equal(response.statusCode, 200);
  t.match(info, {
    model_id: "bge-m3",
    model_type: { embedding: { pooling: "cls" } },
    max_input_length: CONTEXT,
    max_client_batch_size: 8,
    max_batch_requests: 1,
    auto_truncate: false,
    version: /^\d+\.\d+\.\d+/,
  });
});

t.test("errors in TEI's shape, with TEI's status codes", async (t) => {
  const cases: [string, object, number, string][] = [
    ["/embed", { inputs: Array(9).fill("x") }, 413, "validation"],
    ["/embed", { inputs: "x", normalize: "yes" }, 422, "validation"],
    ["/embed", { inputs: [] }, 400, "empty"],
    ["/embed", { inputs: "x", prompt_name: "query" }, 422, "validation"],
    ["/embed", { inputs: [[0, 300000]] }, 422, "tokenizer"],
    ["/embed", { inputs: "x", dimensions: 100000 }, 422, "validation"],
    ["/tokenize", { inputs: Array(9).fill("x") }, 413, "validation"],
    ["/decode", { ids: [999999] }, 422, "tokenizer"],
    ["/decode", { ids: Array(300_001).fill(5) }, 413, "validation"],
    ["/embed_sparse", { inputs: "x" }, 424, "backend"],
    ["/embed_all", { inputs: "x" }, 424, "backend"],
    ["/rerank", { query: "q", texts: [] }, 400, "empty"],
  ];
  for (const [url, payload, status, errorType] of cases) {
    const response = await post(url, payload);
    t.equal(response.status, status, `${url} ${JSON.stringify(payload).slice(0, 50)}: ${response.body.error}`);
    t.same(Object.keys(response.body).sort(), ["error", "error_type"]);
    t.equal(response.body.error_type, errorType);
  }
  const unauthorized = await server.app.inject({ method: "POST", url: "/embed", payload: { inputs: "x" } });
  t.equal(unauthorized.statusCode, 401);
  t.equal(unauthorized.json().error_type, "unauthorized", "a 401 in TEI's shape too");
  const openAi = await post("/v1/embeddings", { input: Array(9).fill("x") });
  t.equal(openAi.status, 400, "OpenAI's routes keep OpenAI's shape");
  t.equal(openAi.body.error.code, "too_many_inputs");
  const fromClient = await client.featureExtraction({ endpointUrl: `${base}/embed`, inputs: Array(9).fill("x") }).catch((e: unknown) => e);
  t.ok(fromClient instanceof InferenceClientProviderApiError, "Hugging Face's client reads TEI's error");
  t.match((fromClient as Error).message, /at most 8 are allowed/);
});

t.test("a full queue is TEI's 429 with Retry-After; a request that never fits is not", async (t) => {
  const embedder = server.service.embedder;
  const original = embedder.embedBatch.bind(embedder);
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  embedder.embedBatch = async (sequences, signal) => {
    await gate;
    return original(sequences, signal);
  };
  t.teardown(() => {
    embedder.embedBatch = original;
  });
  const filling = post("/embed", { inputs: Array.from({ length: 8 }, (_, i) => `input ${i}`) });
  const deadline = Date.now() + 30_000;
  while (server.service.scheduler.queuedInputs < 7 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
  const refused = await post("/embed", { inputs: ["a", "b"] });
  t.equal(refused.status, 429);
  t.equal(refused.body.error_type, "overloaded");
  t.equal(refused.headers["retry-after"], "1");
  open();
  t.equal((await filling).status, 200);
});
