/**
 * What Cohere's quantised embedding types cost in ranking (`npm run bench:quantization`): a corpus and
 * queries are embedded with the model, every query ranks the corpus by float cosine (the reference) and
 * by each quantised form the server sends (src/embedding/quantize.ts), and the script prints the mean
 * top-10 agreement with the float ranking (|top-10 ∩ float top-10| / 10) for each.
 *
 *   tsx scripts/bench/quantization.ts [--model file.gguf] [--documents 2000] [--queries 100] [--seed 1]
 *
 * The corpus is generated: documents of 12 words drawn from the model's vocabulary (whole-word pieces of
 * 4+ Latin letters), queries of 6 words taken from one document and 2 drawn at random, so every query has
 * a related document and many loosely related ones. Without --model it uses the full-size synthetic BGE-M3
 * (test/helpers/models.ts FULL, Q4_K_M, random weights): its vectors are not BGE-M3's, so run it with
 * the real model's GGUF for figures that hold for BGE-M3.
 */
import os from "node:os";
import { parseScriptOptions } from "../cli-options.js";
import { binaryOf, int8Of, ubinaryOf, uint8Of } from "../../src/embedding/quantize.js";
import { normalisePrefix } from "../../src/embedding/vector.js";
import { createEmbedder } from "../../src/engine/create.js";
import { FULL, testModel } from "../../test/helpers/models.js";
import { cpuClass, describeCpu } from "./cpu-class.js";

const values = parseScriptOptions(import.meta.url, {
  model: { type: "string" },
  documents: { type: "string", default: "2000" },
  queries: { type: "string", default: "100" },
  seed: { type: "string", default: "1" },
});
const documentCount = Number(values.documents);
const queryCount = Number(values.queries);
if (!Number.isInteger(documentCount) || documentCount < 20 || !Number.isInteger(queryCount) || queryCount < 1) {
  throw new Error("--documents must be an integer >= 20 and --queries >= 1");
}
const TOP = 10;

const modelPath = values.model ?? (await testModel({ ...FULL, fileType: "q4_k_m" }));
const embedder = await createEmbedder({
  engine: "auto",
  modelPath,
  device: "cpu",
  threads: 0,
  contextSize: 512,
  maxBatchTokens: 512,
  maxBatchSequences: 32,
});

/** A seeded generator (mulberry32), so every run embeds the same corpus. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = Math.imul(state ^ (state >>> 15), 1 | state);
    x ^= x + Math.imul(x ^ (x >>> 7), 61 | x);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const next = random(Number(values.seed));
const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)];
const ids = Uint32Array.from({ length: Math.min(embedder.info.nVocab, 100_000) }, (_, id) => id);
const words = embedder.vocabulary
  .texts(ids)
  .filter((piece) => /^\u2581[a-z]{4,}$/.test(piece))
  .map((piece) => piece.slice(1));
const documents = Array.from({ length: documentCount }, () => Array.from({ length: 12 }, () => pick(words)));
const queries = Array.from({ length: queryCount }, () => {
  const source = pick(documents);
  return [...Array.from({ length: 6 }, () => pick(source)), pick(words), pick(words)].join(" ");
});

/** Unit vectors of `texts`, in batches that fit the engine's limits. */
async function embed(texts: readonly string[]): Promise<Float32Array[]> {
  const vectors: Float32Array[] = [];
  const dim = embedder.info.dimensions;
  const perBatch = Math.min(embedder.limits.maxBatchSequences, 16);
  for (let at = 0; at < texts.length; at += perBatch) {
    const sequences = await embedder.tokenize(texts.slice(at, at + perBatch));
    const pooled = await embedder.embedBatch(sequences);
    for (let i = 0; i < sequences.length; i++) vectors.push(normalisePrefix(pooled.slice(i * dim, (i + 1) * dim)));
  }
  return vectors;
}

const started = performance.now();
const documentVectors = await embed(documents.map((words) => words.join(" ")));
const queryVectors = await embed(queries);
const embedSeconds = (performance.now() - started) / 1000;
await embedder.dispose();

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
};
const cosine = (a: ArrayLike<number>, b: ArrayLike<number>) => dot(a, b) / Math.sqrt(dot(a, a) * dot(b, b));
const popcount = (x: number) => {
  let bits = 0;
  for (let v = x; v; v &= v - 1) bits++;
  return bits;
};
const hamming = (a: Uint8Array, b: Uint8Array) => {
  let distance = 0;
  for (let i = 0; i < a.length; i++) distance += popcount(a[i] ^ b[i]);
  return distance;
};

/** The indices of the `count` documents with the highest scores. */
const top = (scores: readonly number[], count = TOP) =>
  scores.map((score, index) => ({ score, index })).sort((a, b) => b.score - a.score).slice(0, count).map((entry) => entry.index);

const int8Documents = documentVectors.map(int8Of);
const uint8Documents = documentVectors.map(uint8Of);
const ubinaryDocuments = documentVectors.map(ubinaryOf);
const binaryDocuments = documentVectors.map(binaryOf);

/** Each way of ranking the corpus for a query, by the form a client stores and compares. */
const rankings: Record<string, (query: Float32Array) => number[]> = {
  "int8, cosine": (q) => top(int8Documents.map((d) => cosine(int8Of(q), d))),
  "int8, dot product": (q) => top(int8Documents.map((d) => dot(int8Of(q), d))),
  "uint8 as stored (offset kept), cosine": (q) => top(uint8Documents.map((d) => cosine(uint8Of(q), d))),
  "binary/ubinary, Hamming": (q) => top(ubinaryDocuments.map((d) => -hamming(ubinaryOf(q), d))),
  "binary, Hamming top-40 rescored with the float query": (q) => {
    const candidates = top(ubinaryDocuments.map((d) => -hamming(ubinaryOf(q), d)), 4 * TOP);
    // sentence-transformers' rescoring: the float query against the unpacked ±1 bits of each candidate
    const rescored = candidates.map((index) => {
      const bits = binaryDocuments[index];
      let score = 0;
      for (let i = 0; i < q.length; i++) score += q[i] * (((bits[i >> 3] + 128) & (0x80 >> (i & 7))) ? 1 : -1);
      return { index, score };
    });
    return rescored.sort((a, b) => b.score - a.score).slice(0, TOP).map((entry) => entry.index);
  },
};

const agreement: Record<string, number> = Object.fromEntries(Object.keys(rankings).map((name) => [name, 0]));
for (const query of queryVectors) {
  const reference = new Set(top(documentVectors.map((d) => dot(query, d))));
  for (const [name, rank] of Object.entries(rankings)) agreement[name] += rank(query).filter((index) => reference.has(index)).length / TOP;
}

process.stdout.write(`${describeCpu(cpuClass())}\n`);
process.stdout.write(
  `model: ${modelPath}\n${documentCount} documents, ${queryCount} queries, ${embedder.info.dimensions} dimensions; ` +
    `embedded in ${embedSeconds.toFixed(1)} s (${os.availableParallelism()} cores)\n`,
);
process.stdout.write(`mean top-${TOP} agreement with float32 cosine:\n`);
for (const [name, total] of Object.entries(agreement)) process.stdout.write(`  ${name.padEnd(55)} ${(total / queryCount).toFixed(3)}\n`);
