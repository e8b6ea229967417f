// Answers are bounded and streamed: MAX_OUTPUT_BYTES refuses what could never fit (400, naming it) and
// what does not fit now (503 + Retry-After); what fits is written piece by piece, byte for byte what
// Fastify's serializer made of the whole answer, and its room is given back however the answer ends.
import http from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import Fastify from "fastify";
import t from "tap";
import { writeRandomHeads } from "../scripts/heads/random-heads.js";
import type { InputOutputs } from "../src/embedding/pipeline.js";
import { embeddingsPieces } from "../src/http/answer-pieces.js";
import { EmbedSparseResponse } from "../src/http/rerank-schemas.js";
import { EmbeddingsResponse } from "../src/http/schemas.js";
import { TINY, testModel } from "./helpers/models.js";
import { nativeAddonOrSkip } from "./helpers/native.js";
import { colbertScore, DEFAULT_HYBRID_WEIGHTS, denseScore, hybridScore, sparseScore, type HybridWeights } from "../src/embedding/scores.js";
import { decodeBase64Vector, startTestServer, waitUntil } from "./support/app.js";

const MiB = 1024 * 1024;
/** BGE-M3's ColBERT width on the tiny model: 4 KiB of outputs per token, as on the real one. */
const COLBERT_WIDTH = 1024;
const BUDGET = 2 * MiB;

// ColBERT outputs (4 KiB a token) make answers large: the native engine runs the heads
if (nativeAddonOrSkip(t)) {
  const modelPath = await testModel(TINY);
  const headsDir = await mkdtemp(path.join(os.tmpdir(), "bge-m3-answer-heads-"));
  t.teardown(() => rm(headsDir, { recursive: true, force: true }));
  await writeRandomHeads(headsDir, { width: TINY.width!, colbertWidth: COLBERT_WIDTH, dtype: "f32", seed: 5 });
  const server = await startTestServer(modelPath, { M3_HEADS: headsDir, MAX_OUTPUT_BYTES: String(BUDGET), ENGINE: "native" });
  t.teardown(() => server.close());
  t.equal(server.service.pipeline.colbertDimensions, COLBERT_WIDTH, "the native engine runs the heads");

  /** `count` inputs of `length` token ids each (`<s>`/`</s>` added by the server). */
  const tokenInputs = (count: number, length: number) =>
    Array.from({ length: count }, (_, i) => Array.from({ length }, (_, j) => 1000 + ((i * 7919 + j * 104729) % 200_000)));
  const outputBytesHeld = async () => (await server.metrics.registry.getSingleMetric("embedding_output_bytes")!.get()).values[0].value;

  /** The answer as the route built it before it streamed: whole objects, rendered by Fastify's serializer from the schema. */
  async function renderedWhole(schema: object, answer: unknown): Promise<string> {
    const renderer = Fastify();
    renderer.get("/", { schema: { response: { 200: schema } } }, async () => answer);
    const response = await renderer.inject({ url: "/" });
    await renderer.close();
    return response.body;
  }
  const vectorWhole = (vector: Float32Array, format: string) =>
    format === "base64" ? Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString("base64") : Array.from(vector);
  const rowsWhole = (packed: Float32Array, format: string) =>
    Array.from({ length: packed.length / COLBERT_WIDTH }, (_, r) => vectorWhole(packed.subarray(r * COLBERT_WIDTH, (r + 1) * COLBERT_WIDTH), format));

  t.test("a request whose outputs could never fit MAX_OUTPUT_BYTES gets 400 naming it and the numbers", async (t) => {
    // 3 x 300 ids (302 tokens with <s> and </s>): 903 ColBERT vectors of 4 KiB, 3.5 MiB against a budget of 2 MiB
    const response = await server.app.inject({
      method: "POST",
      url: "/v1/embeddings",
      payload: { input: tokenInputs(3, 300), return_colbert_vecs: true, return_dense: false },
    });
    t.equal(response.statusCode, 400);
    const { error } = response.json();
    t.equal(error.code, "output_too_large");
    t.match(error.message, new RegExp(`take ${903 * COLBERT_WIDTH * 4} bytes, more than the ${BUDGET} bytes .*MAX_OUTPUT_BYTES`));
    t.equal(response.headers["retry-after"], undefined, "never retryable");
    const dense = await server.app.inject({ method: "POST", url: "/v1/embeddings", payload: { input: tokenInputs(3, 300) } });
    t.equal(dense.statusCode, 200, "the same inputs' dense vectors fit");
    t.equal(await outputBytesHeld(), 0, "nothing is held after either");
  });

  for (const format of ["float", "base64"]) {
    t.test(`a ColBERT answer within the budget is streamed, byte for byte the whole answer (${format})`, async (t) => {
      const inputs = ["BGE-M3 gives dense, sparse and ColBERT outputs from one pass.", "Zwei Wörter", "many words ".repeat(120)];
      const request = { input: inputs, encoding_format: format, dimensions: 48, return_sparse: true, return_sparse_tokens: true, return_colbert_vecs: true, model: "m\u00e9\"3" };
      const response = await server.app.inject({ method: "POST", url: "/v1/embeddings", payload: request });
      t.equal(response.statusCode, 200);
      t.equal(response.headers["transfer-encoding"], "chunked", "an answer of several chunks is streamed");
      t.match(response.headers["content-type"], /^application\/json; charset=utf-8$/);

      const { pipeline } = server.service;
      const parsed = inputs.map((text, i) => ({ kind: "text" as const, text, param: `input[${i}]` }));
      const result = await pipeline.embed({ inputs: parsed, dimensions: 48, truncate: false, outputs: { dense: true, sparse: true, colbert: true } });
      result.release();
      const whole = {
        object: "list",
        data: result.items.map((item: InputOutputs, index) => ({
          object: "embedding",
          index,
          embedding: vectorWhole(item.dense!, format),
          sparse_embedding: { indices: Array.from(item.sparse!.indices), values: Array.from(item.sparse!.values), tokens: pipeline.tokenTexts(item.sparse!.indices) },
          colbert_embedding: rowsWhole(item.colbert!, format),
        })),
        model: request.model,
        usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
      };
      const expected = await renderedWhole(EmbeddingsResponse, whole);
      t.equal(response.body.length, expected.length);
      t.ok(response.body === expected, "the streamed text equals the serializer's");
      t.equal(await outputBytesHeld(), 0);
    });
  }

  t.test("each item's outputs are dropped once its text is written, the rest kept until then", async (t) => {
    const inputs = tokenInputs(3, 20).map((tokens, i) => ({ kind: "tokens" as const, tokens, param: `input[${i}]` }));
    const { pipeline } = server.service;
    const result = await pipeline.embed({
      inputs, truncate: false, dimensions: pipeline.dimensions, outputs: { dense: true, sparse: false, colbert: true, hidden: false },
    });
    t.teardown(() => result.release());
    const kept = result.items.map((item) => item.colbert!);
    const held = () => result.items.map((item) => item.colbert !== undefined);
    const seen: boolean[][] = [];
    const pieces = embeddingsPieces({
      items: result.items, format: "float", colbertDimensions: COLBERT_WIDTH, model: "m", promptTokens: result.promptTokens,
      written: (index) => {
        seen.push(held());
        result.forget(index);
      },
    });
    const text = [...pieces].join("");
    t.same(seen, [[true, true, true], [false, true, true], [false, false, true]], "written in input order, each with its outputs until then");
    t.same(held(), [false, false, false], "every item dropped at the end");
    const rows = JSON.parse(text).data.map((item: { colbert_embedding: number[][] }) => item.colbert_embedding);
    t.same(rows, kept.map((packed) => rowsWhole(packed, "float")), "the rows written are the outputs the items held");
  });

  t.test("small answers and /embed_sparse are the serializer's text too", async (t) => {
    const dense = await server.app.inject({ method: "POST", url: "/v1/embeddings", payload: { input: "short", return_dense: false, return_sparse: true } });
    t.equal(dense.statusCode, 200);
    t.ok(dense.headers["content-length"], "one chunk goes out whole, with its length");
    const sparse = await server.app.inject({ method: "POST", url: "/embed_sparse", payload: { inputs: ["first text", "the second text"] } });
    t.equal(sparse.statusCode, 200);
    const items = sparse.json() as { index: number; value: number }[][];
    t.equal(sparse.body, await renderedWhole(EmbedSparseResponse, items));
    t.equal(items.length, 2);
    t.ok(items.some((entries) => entries.length > 0), "the comparison covers some weights");
  });

  t.test("rerank keeps only the query's outputs: documents whose vectors exceed the budget are scored", async (t) => {
    const documents = Array.from({ length: 40 }, (_, i) => `document ${i}: ${"several words about a topic ".repeat(8)}`);
    const embedded = await server.app.inject({ method: "POST", url: "/v1/embeddings", payload: { input: documents, return_colbert_vecs: true, return_dense: false } });
    t.equal(embedded.statusCode, 400, "their ColBERT vectors alone are over MAX_OUTPUT_BYTES");
    const ranked = await server.app.inject({ method: "POST", url: "/v1/rerank", payload: { query: "a topic", documents, mode: "colbert" } });
    t.equal(ranked.statusCode, 200);
    t.equal(ranked.json().results.length, documents.length);
    t.equal(await outputBytesHeld(), 0);
  });

  t.test("rerank scores folded batch by batch equal scores of the whole outputs, in every mode", async (t) => {
    // a 64-token batch budget spreads the documents over many batches
    const folded = await startTestServer(modelPath, { M3_HEADS: headsDir, MAX_BATCH_TOKENS: "64", ENGINE: "native" });
    t.teardown(() => folded.close());
    const query = "which document talks about sparse retrieval?";
    const documents = Array.from({ length: 12 }, (_, i) => `document ${i} about ${i % 3 ? "dense vectors" : "sparse retrieval"} ${"and more words ".repeat(i)}`);
    // the same inputs as one request, as rerank sends them: the same batches, so the same floats
    const whole = await folded.app.inject({
      method: "POST",
      url: "/v1/embeddings",
      payload: { input: [query, ...documents], return_sparse: true, return_colbert_vecs: true, encoding_format: "base64" },
    });
    t.equal(whole.statusCode, 200);
    const outputs = (whole.json().data as { embedding: string; sparse_embedding: { indices: number[]; values: number[] }; colbert_embedding: string[] }[]).map((item) => ({
      dense: decodeBase64Vector(item.embedding),
      sparse: { indices: Uint32Array.from(item.sparse_embedding.indices), values: Float32Array.from(item.sparse_embedding.values) },
      colbert: Float32Array.from(item.colbert_embedding.flatMap((row) => Array.from(decodeBase64Vector(row)))),
    }));
    const [q, ...docs] = outputs;
    const cases: [object, HybridWeights][] = [
      [{ mode: "dense" }, { dense: 1, sparse: 0, colbert: 0 }],
      [{ mode: "sparse" }, { dense: 0, sparse: 1, colbert: 0 }],
      [{ mode: "colbert" }, { dense: 0, sparse: 0, colbert: 1 }],
      [{}, DEFAULT_HYBRID_WEIGHTS],
      [{ mode: "hybrid", weights: { dense: 0.5, colbert: 2 } }, { dense: 0.5, sparse: 0, colbert: 2 }],
    ];
    for (const [options, weights] of cases) {
      const response = await folded.app.inject({ method: "POST", url: "/v1/rerank", payload: { query, documents, ...options } });
      t.equal(response.statusCode, 200);
      const scores = (response.json().results as { index: number; relevance_score: number }[]).sort((a, b) => a.index - b.index).map((r) => r.relevance_score);
      const expected = docs.map((d) =>
        hybridScore(
          {
            dense: denseScore(q.dense, d.dense),
            sparse: sparseScore(q.sparse, d.sparse),
            colbert: colbertScore(q.colbert, d.colbert, COLBERT_WIDTH),
          },
          weights,
        ),
      );
      t.same(scores, expected, `scores of ${JSON.stringify(options)}`);
    }
    const batches = (await folded.metrics.registry.getSingleMetric("embedding_batch_sequences")!.get()).values.find((v) => (v as { metricName?: string }).metricName?.endsWith("_count"));
    t.ok(batches && batches.value > cases.length * 3, `the inputs ran in ${batches?.value} batches`);
  });

  t.test("a request that fits only once another answer is written gets 503 + Retry-After, then 200", async (t) => {
    await server.app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = server.app.server.address() as { port: number };
    // 1.2 MiB of ColBERT vectors: two do not fit the 2 MiB budget at once
    const body = JSON.stringify({ input: tokenInputs(1, 300), return_colbert_vecs: true });
    const slow = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const request = http.request({ port, host: "127.0.0.1", method: "POST", path: "/v1/embeddings", headers: { "content-type": "application/json" } }, resolve);
      request.on("error", reject);
      request.end(body);
    });
    t.equal(slow.statusCode, 200);
    slow.pause(); // a reader that stops: its answer's room stays held
    t.ok((await outputBytesHeld()) >= 301 * COLBERT_WIDTH * 4, "the first answer's outputs are held while it is written");
    const refused = await server.app.inject({ method: "POST", url: "/v1/embeddings", payload: body, headers: { "content-type": "application/json" } });
    t.equal(refused.statusCode, 503);
    t.equal(refused.headers["retry-after"], "1");
    t.match(refused.json().error.message, /MAX_OUTPUT_BYTES/);
    const chunks: Buffer[] = [];
    slow.on("data", (chunk: Buffer) => chunks.push(chunk));
    await new Promise((resolve) => slow.on("end", resolve).resume());
    t.equal(JSON.parse(Buffer.concat(chunks).toString()).data[0].colbert_embedding.length, 301, "every row arrived");
    await t.resolves(waitUntil(async () => (await outputBytesHeld()) === 0, "the room is given back"), "the room is given back once the answer is written");
    const retried = await server.app.inject({ method: "POST", url: "/v1/embeddings", payload: body, headers: { "content-type": "application/json" } });
    t.equal(retried.statusCode, 200);
  });

  t.test("a reader that reads nothing for REQUEST_TIMEOUT_MS is dropped and its room given back", async (t) => {
    // REQUEST_TIMEOUT_MS also bounds the request's queueing and inference (~0.5 s here, idle): 10 s leaves
    // room for a loaded machine, where 3 s answered 504 before the first row
    const impatient = await startTestServer(modelPath, { M3_HEADS: headsDir, REQUEST_TIMEOUT_MS: "10000", ENGINE: "native" });
    t.teardown(() => impatient.close());
    await impatient.app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = impatient.app.server.address() as { port: number };
    const held = async () => (await impatient.metrics.registry.getSingleMetric("embedding_output_bytes")!.get()).values[0].value;
    const body = JSON.stringify({ input: tokenInputs(4, 1000), return_colbert_vecs: true });
    let paused: (response: http.IncomingMessage) => void;
    const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
      paused = resolve;
      const request = http.request({ port, host: "127.0.0.1", method: "POST", path: "/v1/embeddings", headers: { "content-type": "application/json" } }, (response) =>
        response.once("data", () => paused(response.pause())),
      );
      request.on("error", reject);
      request.end(body);
    });
    t.equal(response.statusCode, 200);
    if (response.statusCode !== 200) return void response.resume();
    t.ok((await held()) > 0, "the answer's room is held while it is written");
    await t.resolves(waitUntil(async () => (await held()) === 0, "the room is given back"), "the server gave the room back");
    const ending = new Promise<string>((resolve) => {
      response.on("end", () => resolve("ended")).on("error", () => resolve("aborted")).resume();
    });
    t.equal(await ending, "aborted", "having closed the connection: the client reads a cut answer, never a complete one");
  });

  t.test("a client that goes away mid-answer gives its room back", async (t) => {
    const { port } = server.app.server.address() as { port: number };
    const body = JSON.stringify({ input: tokenInputs(1, 400), return_colbert_vecs: true });
    await new Promise<void>((resolve, reject) => {
      const request = http.request({ port, host: "127.0.0.1", method: "POST", path: "/v1/embeddings", headers: { "content-type": "application/json" } }, (response) => {
        response.once("data", () => {
          request.destroy();
          resolve();
        });
      });
      request.on("error", () => {});
      request.on("close", resolve);
      request.end(body).on("error", reject);
    });
    await t.resolves(waitUntil(async () => (await outputBytesHeld()) === 0, "the room is given back"), "nothing is held once the connection closed");
  });
}
