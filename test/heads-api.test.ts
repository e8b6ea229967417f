// Sparse, ColBERT and rerank over HTTP: the real server with heads read from .pt files (M3_HEADS), its
// answers against the float64 reference (reference.ts + reference-heads.ts), and every request shape.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import t from "tap";
import { writeRandomHeads } from "../scripts/heads/random-heads.js";
import { readHeadsDirectory } from "../src/model/heads/heads.js";
import { TINY, testModel } from "./helpers/models.js";
import { nativeAddonOrSkip } from "./helpers/native.js";
import { loadReferenceModel, referenceEmbedding, referenceHiddenStates } from "./helpers/reference.js";
import {
  referenceColbert,
  referenceColbertScore,
  referenceSparse,
  referenceSparseScore,
} from "./helpers/reference-heads.js";
import { cosine, decodeBase64Vector, startTestServer, type TestServer } from "./support/app.js";

const modelPath = await testModel(TINY);
const headsDir = await mkdtemp(path.join(os.tmpdir(), "bge-m3-heads-"));
t.teardown(() => rm(headsDir, { recursive: true, force: true }));
await writeRandomHeads(headsDir, { width: TINY.width!, dtype: "f32", seed: 3 });

interface Item {
  index: number;
  embedding?: number[] | string;
  sparse_embedding?: { indices: number[]; values: number[]; tokens?: string[] };
  colbert_embedding?: (number[] | string)[];
}

async function postTo(url: string, payload: unknown, target: TestServer) {
  const response = await target.app.inject({ method: "POST", url, payload: payload as object });
  return { status: response.statusCode, body: response.json() };
}

const DIM = TINY.width!;
const QUERY_FALLBACK = "fallback query";
const DROPPED = new Set([0, 1, 2, 3]);
const TEXTS = ["How do sparse and dense retrieval differ?", "Dense vectors capture meaning; sparse weights capture words words words."];

// The native engine runs the heads: where its addon is built they must run (a skip saying why otherwise,
// a failure under BGE_M3_REQUIRE_NATIVE=1), never a quiet fall-back to the answers without them.
t.test("with the heads, on the native engine", async (t) => {
  if (!nativeAddonOrSkip(t)) return;
  const server = await startTestServer(modelPath, { M3_HEADS: headsDir, MAX_RERANK_DOCUMENTS: "6", ENGINE: "native" });
  t.teardown(() => server.close());
  t.ok(server.service.embedder.heads, "the native engine runs the heads");
  const post = (url: string, payload: unknown) => postTo(url, payload, server);
  const reference = loadReferenceModel(modelPath);
  t.teardown(() => reference.close());
  const heads = await readHeadsDirectory(headsDir);
  const tokenize = (text: string) => server.service.embedder.tokenize([text]).then(([ids]) => Array.from(ids));
  /** The float64 reference's dense vector, sparse weights and ColBERT vectors of a text. */
  const referenceOutputs = async (text: string) => {
    const ids = await tokenize(text);
    const states = referenceHiddenStates(reference, ids);
    return {
      ids,
      dense: referenceEmbedding(reference, ids),
      sparse: referenceSparse(states, ids, heads, DROPPED),
      colbert: referenceColbert(states, ids.length, heads),
    };
  };

  t.test("/health lists the outputs", async (t) => {
    const response = await server.app.inject({ url: "/health" });
    t.same(response.json().outputs, ["dense", "sparse", "colbert"]);
    t.equal(response.json().heads_unavailable, undefined);
  });

  t.test("one request returns dense, sparse and ColBERT matching the float64 reference", async (t) => {
    const { status, body } = await post("/v1/embeddings", { input: TEXTS, return_sparse: true, return_colbert_vecs: true });
    t.equal(status, 200, JSON.stringify(body).slice(0, 300));
    const plain = (await post("/v1/embeddings", { input: TEXTS })).body;
    for (const [i, text] of TEXTS.entries()) {
      const item = body.data[i] as Item;
      const expected = await referenceOutputs(text);
      t.same(item.embedding, plain.data[i].embedding, `input ${i}: dense vector as without heads`);
      t.ok(cosine(item.embedding as number[], expected.dense) > 0.9999, `input ${i}: dense vs reference`);
      const sparse = item.sparse_embedding!;
      t.same(Object.keys(sparse).sort(), ["indices", "values"]);
      const got = new Map(sparse.indices.map((id, k) => [id, sparse.values[k]]));
      const significant = [...expected.sparse].filter(([, w]) => w > 1e-3).map(([id]) => id).sort((a, b) => a - b);
      t.same(significant.filter((id) => !got.has(id)), [], `input ${i}: every reference id with weight > 1e-3 is there`);
      for (const [id, w] of got) t.ok(Math.abs(w - (expected.sparse.get(id) ?? 0)) < 1e-3, `input ${i}: weight of ${id}`);
      const colbert = item.colbert_embedding as number[][];
      t.equal(colbert.length, expected.ids.length - 1, `input ${i}: a ColBERT vector per token after <s>`);
      t.ok(colbert.every((v, r) => v.length === DIM && cosine(v, expected.colbert[r]) > 0.99999), `input ${i}: ColBERT vs reference`);
    }
    t.equal(body.usage.prompt_tokens, plain.usage.prompt_tokens, "usage as for dense only");
  });

  t.test("encodings and options", async (t) => {
    const float = (await post("/v1/embeddings", { input: TEXTS[0], return_colbert_vecs: true, return_sparse: true, return_sparse_tokens: true })).body;
    const b64 = (await post("/v1/embeddings", { input: TEXTS[0], return_colbert_vecs: true, encoding_format: "base64" })).body;
    const rows = b64.data[0].colbert_embedding as string[];
    t.ok(rows.every((row, r) => Array.from(decodeBase64Vector(row)).every((x, k) => Math.abs(x - float.data[0].colbert_embedding[r][k]) < 1e-7)), "base64 ColBERT rows decode to the float rows");
    const sparse = float.data[0].sparse_embedding;
    const ids = await tokenize(TEXTS[0]);
    t.same(sparse.tokens, server.service.embedder.vocabulary.texts(Uint32Array.from(sparse.indices)), "tokens are the vocabulary entries");
    t.ok(sparse.indices.every((id: number) => ids.includes(id)), "every index is a token of the input");
    const noDense = (await post("/v1/embeddings", { input: "x", return_dense: false, return_sparse: true })).body;
    t.same(Object.keys(noDense.data[0]).sort(), ["index", "object", "sparse_embedding"], "return_dense: false omits embedding");
    const nothing = await post("/v1/embeddings", { input: "x", return_dense: false });
    t.equal(nothing.status, 400);
    t.equal(nothing.body.error.param, "return_dense");
    const plain = (await post("/v1/embeddings", { input: "x" })).body;
    t.same(Object.keys(plain.data[0]).sort(), ["embedding", "index", "object"], "OpenAI requests see OpenAI's shape");
  });

  t.test("TEI's /embed_sparse", async (t) => {
    const { status, body } = await post("/embed_sparse", { inputs: TEXTS });
    t.equal(status, 200);
    const ours = (await post("/v1/embeddings", { input: TEXTS, return_sparse: true, return_dense: false })).body;
    t.same(body, ours.data.map((item: Item) => item.sparse_embedding!.indices.map((index, k) => ({ index, value: item.sparse_embedding!.values[k] }))));
    t.same((await post("/embed_sparse", { inputs: TEXTS[0] })).body, [body[0]], "a single string");
    const left = await post("/embed_sparse", { inputs: TEXTS[0], truncation_direction: "Left" });
    t.same(left.body, [body[0]], "truncation_direction Left: nothing to cut, the same weights");
    const empty = await post("/embed_sparse", { inputs: [] });
    t.same([empty.status, empty.body.error_type], [400, "empty"], "errors in TEI's shape");
  });

  t.test("TEI's /embed_all: every token's last hidden state, <s>'s the pooled vector, as the reference", async (t) => {
    const { status, body } = await post("/embed_all", { inputs: TEXTS });
    t.equal(status, 200, JSON.stringify(body).slice(0, 200));
    const dense = (await post("/embed", { inputs: TEXTS })).body as number[][];
    for (const [i, text] of TEXTS.entries()) {
      const ids = await tokenize(text);
      const states = referenceHiddenStates(reference, ids);
      const rows = body[i] as number[][];
      t.equal(rows.length, ids.length, `text ${i}: one row per token, <s> and </s> included`);
      const worst = Math.min(...rows.map((row, r) => cosine(row, states.subarray(r * DIM, (r + 1) * DIM))));
      t.ok(worst > 0.99999, `text ${i}: every row within cosine 0.99999 of float64 (worst ${worst.toFixed(7)})`);
      const norm = Math.hypot(...rows[0]);
      t.ok(rows[0].every((x, k) => Math.abs(x / norm - dense[i][k]) < 1e-6), `text ${i}: <s>'s row, normalised, is /embed's vector`);
    }
  });

  const QUERY = "What captures the meaning of words?";
  const DOCUMENTS = [
    "Dense vectors capture the meaning of a text.",
    "The weather is sunny today.",
    "Sparse weights capture which words appear.",
    "Late interaction compares every token of the query with every token of a document.",
  ];

  t.test("rerank in the documents shape: hybrid scores of the reference, best first", async (t) => {
    const { status, body } = await post("/v1/rerank", { query: QUERY, documents: DOCUMENTS, return_documents: true, model: "m" });
    t.equal(status, 200, JSON.stringify(body));
    const q = await referenceOutputs(QUERY);
    const expected = await Promise.all(
      DOCUMENTS.map(async (text) => {
        const d = await referenceOutputs(text);
        let dense = 0;
        for (let k = 0; k < DIM; k++) dense += q.dense[k] * d.dense[k];
        return (0.4 * dense + 0.2 * referenceSparseScore(q.sparse, d.sparse) + 0.4 * referenceColbertScore(q.colbert, d.colbert)) / 1.0;
      }),
    );
    t.equal(body.results.length, DOCUMENTS.length);
    t.equal(body.model, "m");
    t.equal(body.object, "list");
    t.ok(typeof body.id === "string" && body.id.length > 0, "an id, as Cohere answers");
    for (const result of body.results) {
      t.ok(Math.abs(result.relevance_score - expected[result.index]) < 1e-3, `document ${result.index}: ${result.relevance_score} vs ${expected[result.index]}`);
      t.equal(result.document.text, DOCUMENTS[result.index]);
    }
    const scores = body.results.map((r: { relevance_score: number }) => r.relevance_score);
    t.same(scores, [...scores].sort((a, b) => b - a), "sorted best first");
    t.ok(body.usage.prompt_tokens > 0 && body.usage.total_tokens === body.usage.prompt_tokens);
    const alias = (await post("/rerank", { query: QUERY, documents: DOCUMENTS.map((text) => ({ text })), top_n: 2 })).body;
    t.same(alias.results.map((r: { index: number }) => r.index), body.results.slice(0, 2).map((r: { index: number }) => r.index), "/rerank, {text} documents, top_n");
    t.notOk("document" in alias.results[0], "no documents unless asked");
  });

  t.test("rerank modes and weights", async (t) => {
    const score = async (extra: object) =>
      (await post("/v1/rerank", { query: QUERY, documents: DOCUMENTS, ...extra })).body.results.sort((a: { index: number }, b: { index: number }) => a.index - b.index).map((r: { relevance_score: number }) => r.relevance_score);
    const dense = await score({ mode: "dense" });
    const sparse = await score({ mode: "sparse" });
    const colbert = await score({ mode: "colbert" });
    const mixed = await score({ mode: "hybrid", weights: { dense: 1, sparse: 1 } });
    mixed.forEach((s: number, i: number) => t.ok(Math.abs(s - (dense[i] + sparse[i]) / 2) < 1e-6, `weights: document ${i}`));
    const q = await referenceOutputs(QUERY);
    const d0 = await referenceOutputs(DOCUMENTS[0]);
    t.ok(Math.abs(sparse[0] - referenceSparseScore(q.sparse, d0.sparse)) < 1e-3, "sparse score");
    t.ok(Math.abs(colbert[0] - referenceColbertScore(q.colbert, d0.colbert)) < 1e-3, "ColBERT score");
    const zero = await post("/v1/rerank", { query: QUERY, documents: DOCUMENTS, weights: { dense: 0 } });
    t.equal(zero.status, 400);
    t.equal(zero.body.error.param, "weights");
  });

  t.test("rerank in TEI's shape", async (t) => {
    const { status, body } = await post("/rerank", { query: QUERY, texts: DOCUMENTS, return_text: true, raw_scores: true });
    t.equal(status, 200);
    t.ok(Array.isArray(body), "a bare array, as TEI answers");
    t.same(Object.keys(body[0]).sort(), ["index", "score", "text"]);
    const documentsShape = (await post("/v1/rerank", { query: QUERY, documents: DOCUMENTS })).body.results;
    t.same(body.map((r: { index: number }) => r.index), documentsShape.map((r: { index: number }) => r.index));
  });

  t.test("rerank refuses bad requests with 400s", async (t) => {
    const cases: [object, string | null][] = [
      [{ query: QUERY }, "documents"],
      [{ query: QUERY, documents: [] }, "documents"],
      [{ query: QUERY, documents: ["a"], texts: ["b"] }, "documents"],
      [{ query: QUERY, documents: Array(7).fill("d") }, "documents"],
      [{ query: "", documents: ["a"] }, "query"],
      [{ query: QUERY, documents: ["a", ""] }, "documents[1]"],
      [{ query: QUERY, documents: ["a"], mode: "bm25" }, "mode"],
      [{ query: QUERY, documents: ["a"], top_n: 0 }, "top_n"],
      [{ documents: ["a"] }, "query"],
    ];
    for (const [payload, param] of cases) {
      const { status, body } = await post("/v1/rerank", payload);
      t.equal(status, 400, JSON.stringify(payload));
      t.equal(body.error.param, param, `param of ${JSON.stringify(payload).slice(0, 60)}`);
    }
    const many = await post("/v1/rerank", { query: QUERY, documents: Array(7).fill("d") });
    t.match(many.body.error.message, /MAX_RERANK_DOCUMENTS/);
  });
});

t.test("without heads: dense works, sparse and ColBERT say why, rerank falls back to dense", async (t) => {
  const plain = await startTestServer(modelPath, { M3_HEADS: "none" });
  t.teardown(() => plain.close());
  const health = (await plain.app.inject({ url: "/health" })).json();
  t.same(health.outputs, ["dense"]);
  t.match(health.heads_unavailable, /M3_HEADS is none/);
  for (const [field, code] of [["return_sparse", "sparse_unavailable"], ["return_colbert_vecs", "colbert_unavailable"]]) {
    const { status, body } = await postTo("/v1/embeddings", { input: "x", [field]: true }, plain);
    t.equal(status, 400, field);
    t.equal(body.error.code, code);
    t.match(body.error.message, /M3_HEADS is none/);
  }
  const sparse = await postTo("/embed_sparse", { inputs: "x" }, plain);
  t.same([sparse.status, sparse.body.error_type], [424, "backend"], "TEI's 424 for an output the model cannot give");
  const hidden = await postTo("/embed_all", { inputs: "x" }, plain);
  t.equal(hidden.status, 424);
  t.match(hidden.body.error, /last hidden states are not available.*M3_HEADS is none/);
  const dense = await postTo("/v1/rerank", { query: QUERY_FALLBACK, documents: ["alpha", "beta"] }, plain);
  t.equal(dense.status, 200, "rerank without a mode uses dense");
  const hybrid = await postTo("/v1/rerank", { query: QUERY_FALLBACK, documents: ["alpha"], mode: "hybrid" }, plain);
  t.equal(hybrid.status, 400);
});

t.test("the node-llama-cpp engine says it runs no heads", async (t) => {
  const other = await startTestServer(modelPath, { M3_HEADS: headsDir, ENGINE: "node-llama-cpp" });
  t.teardown(() => other.close());
  t.match((await other.app.inject({ url: "/health" })).json().heads_unavailable, /node-llama-cpp engine runs no heads/);
  for (const [field, code] of [["return_sparse", "sparse_unavailable"], ["return_colbert_vecs", "colbert_unavailable"]]) {
    const { status, body } = await postTo("/v1/embeddings", { input: "x", [field]: true }, other);
    t.equal(status, 400, field);
    t.equal(body.error.code, code);
    t.match(body.error.message, /engine runs no heads/);
  }
});
