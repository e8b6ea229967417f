// Cohere's embed and rerank through the real server with Cohere's own client (cohere-ai): every embedding
// type against the float vector (binary/ubinary against numpy's packbits computed here, int8 within its
// documented rounding), v1's answer shapes, and errors in Cohere's shape.
import type { AddressInfo } from "node:net";
import { CohereClient, CohereClientV2, CohereError } from "cohere-ai";
import t from "tap";
import { TINY, testModel } from "./helpers/models.js";
import { startTestServer } from "./support/app.js";

const server = await startTestServer(await testModel(TINY), { API_KEY: "sk-test", CONTEXT_SIZE: "64", MAX_INPUTS: "8", MAX_QUEUE: "8" });
await server.app.listen({ host: "127.0.0.1", port: 0 });
t.teardown(() => server.close());
const base = `http://127.0.0.1:${(server.app.server.address() as AddressInfo).port}`;
const v2 = new CohereClientV2({ token: "sk-test", environment: base, maxRetries: 0 });
const v1 = new CohereClient({ token: "sk-test", environment: base, maxRetries: 0 });

const TEXTS = ["What is BGE-M3?", "A multilingual embedding model.", "Late interaction over tokens."];

/** The float vectors /v1/embeddings gives. */
async function floats(input: unknown, extra: object = {}): Promise<number[][]> {
  const response = await server.app.inject({ method: "POST", url: "/v1/embeddings", payload: { input, ...extra }, headers: { authorization: "Bearer sk-test" } });
  return response.json().data.map((item: { embedding: number[] }) => item.embedding);
}

/** numpy's packbits(vector > 0): 8 dimensions per byte, the first in the highest bit. */
function packbits(vector: number[]): number[] {
  return Array.from({ length: Math.ceil(vector.length / 8) }, (_, byte) =>
    vector.slice(byte * 8, byte * 8 + 8).reduce((bits, x, bit) => bits | (x > 0 ? 0x80 >> bit : 0), 0),
  );
}

t.test("v2 embed: every embedding type from one request, against the float vectors", async (t) => {
  const expected = await floats(TEXTS);
  const response = await v2.embed({
    model: "embed-v4.0",
    inputType: "search_document",
    texts: TEXTS,
    embeddingTypes: ["float", "int8", "uint8", "binary", "ubinary", "base64"],
  });
  const e = response.embeddings;
  t.same(e.float, expected, "float: the vectors /v1/embeddings gives");
  t.same(response.texts, TEXTS);
  t.ok(response.meta?.billedUnits?.inputTokens! > TEXTS.length * 2, "meta.billed_units.input_tokens counts the tokens");
  for (const [i, vector] of expected.entries()) {
    t.same(e.ubinary![i], packbits(vector), `text ${i}: ubinary is packbits(x > 0)`);
    t.same(e.binary![i], packbits(vector).map((byte) => byte - 128), `text ${i}: binary is that - 128`);
    const largest = Math.max(...vector.map(Math.abs));
    const int8 = e.int8![i];
    t.ok(int8.every((q) => Number.isInteger(q) && q >= -127 && q <= 127), `text ${i}: int8 in [-127, 127]`);
    t.equal(Math.max(...int8.map(Math.abs)), 127, `text ${i}: the largest component maps to ±127`);
    const worst = Math.max(...int8.map((q, k) => Math.abs((q * largest) / 127 - vector[k])));
    t.ok(worst <= largest / 254 + 1e-7, `text ${i}: int8 * max|x| / 127 round-trips within max|x| / 254 (worst ${worst.toExponential(2)})`);
    t.same(e.uint8![i], int8.map((q) => q + 128), `text ${i}: uint8 is int8 + 128`);
    const bytes = Buffer.from(e.base64![i], "base64");
    t.same(Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)), vector, `text ${i}: base64 is the float32 bytes`);
  }
});

t.test("v2 embed: inputs of text parts, output_dimension, truncate START/END/NONE", async (t) => {
  const inputs = TEXTS.map((text) => ({ content: [{ type: "text" as const, text }] }));
  const viaInputs = await v2.embed({ model: "m", inputType: "search_query", inputs, embeddingTypes: ["float"] });
  t.same(viaInputs.embeddings.float, await floats(TEXTS), "inputs as texts");
  const short = await v2.embed({ model: "m", inputType: "clustering", texts: TEXTS, outputDimension: 16 });
  t.same(short.embeddings.float, await floats(TEXTS, { dimensions: 16 }), "output_dimension; float by default");
  const long = `${"words to cut ".repeat(40)}the end`;
  const start = await v2.embed({ model: "m", inputType: "search_document", texts: [long], truncate: "START" });
  const end = await v2.embed({ model: "m", inputType: "search_document", texts: [long], truncate: "END" });
  t.notSame(start.embeddings.float, end.embeddings.float, "START and END keep different parts");
  const none = await v2.embed({ model: "m", inputType: "search_document", texts: [long], truncate: "NONE" }).catch((e: unknown) => e);
  t.ok(none instanceof CohereError && none.statusCode === 400, "NONE: an input over the context is a 400");
});

t.test("v1 embed: embeddings_floats without embedding_types, by type with them", async (t) => {
  const plain = await v1.embed({ texts: TEXTS, model: "m", inputType: "classification" });
  t.equal(plain.responseType, "embeddings_floats");
  t.same((plain as { embeddings: number[][] }).embeddings, await floats(TEXTS));
  const typed = await v1.embed({ texts: TEXTS, model: "m", inputType: "classification", embeddingTypes: ["ubinary"] });
  t.equal(typed.responseType, "embeddings_by_type");
  t.same((typed as { embeddings: { ubinary: number[][] } }).embeddings.ubinary, (await floats(TEXTS)).map(packbits));
});

t.test("v2 rerank: BGE-M3's scores, best first, as /v1/rerank ranks them", async (t) => {
  const documents = ["Paris is the capital of France.", "BGE-M3 is an embedding model.", "The weather is fine."];
  const response = await v2.rerank({ model: "rerank-v3.5", query: "Which model embeds text?", documents, topN: 2 });
  const ours = await server.app.inject({
    method: "POST",
    url: "/v1/rerank",
    payload: { query: "Which model embeds text?", documents, top_n: 2 },
    headers: { authorization: "Bearer sk-test" },
  });
  t.same(
    response.results.map((r) => [r.index, r.relevanceScore]),
    ours.json().results.map((r: { index: number; relevance_score: number }) => [r.index, r.relevance_score]),
  );
  t.ok(typeof response.id === "string" && response.meta?.billedUnits?.inputTokens! > 0);
});

t.test("errors in Cohere's shape", async (t) => {
  const cases: [string, object, number][] = [
    ["/v2/embed", { model: "m", input_type: "search_query", texts: Array(9).fill("x") }, 400],
    ["/v2/embed", { model: "m", input_type: "search_query", texts: ["x"], embedding_types: ["int4"] }, 400],
    ["/v2/embed", { model: "m", input_type: "image", images: ["data:image/png;base64,AAAA"] }, 400],
    ["/v2/embed", { model: "m", input_type: "search_query" }, 400],
    ["/v1/embed", { texts: [] }, 400],
    ["/v2/rerank", { model: "m", query: "q", documents: [] }, 400],
  ];
  for (const [url, payload, status] of cases) {
    const response = await server.app.inject({ method: "POST", url, payload, headers: { authorization: "Bearer sk-test" } });
    t.equal(response.statusCode, status, `${url} ${JSON.stringify(payload).slice(0, 60)}: ${response.body}`);
    t.same(Object.keys(response.json()).sort(), ["id", "message"]);
  }
  const wrongKey = new CohereClientV2({ token: "nope", environment: base, maxRetries: 0 });
  const unauthorized = await wrongKey.embed({ model: "m", inputType: "search_query", texts: ["x"] }).catch((e: unknown) => e);
  t.ok(unauthorized instanceof CohereError && unauthorized.statusCode === 401, "401 as Cohere's client reads it");
  t.match((unauthorized as CohereError).body, { message: /API key/ });
  const tooMany = await v2.embed({ model: "m", inputType: "search_query", texts: Array(9).fill("x") }).catch((e: unknown) => e);
  t.match((tooMany as CohereError).body, { message: /at most 8 are allowed/ }, "the client carries the message");
});
