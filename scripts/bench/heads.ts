import { existsSync } from "node:fs";
import path from "node:path";
import { writeRandomHeads } from "../heads/random-heads.js";
import { HEAD_FILES } from "../../src/model/heads/heads.js";
import { postJson as post, syntheticTokens } from "./workloads.js";

/**
 * The heads section of `npm run bench`: what sparse and ColBERT outputs add to the dense vector's cost
 * (same server, same inputs, with and without them), and rerank of one query against 100 documents.
 */

/** BGE-M3-shaped random heads (fp16, 1024 wide, like the official files), written once. */
export async function benchHeads(cacheDir: string): Promise<string> {
  const directory = path.join(cacheDir, "heads-1024");
  if (!existsSync(path.join(directory, HEAD_FILES.colbert))) await writeRandomHeads(directory, { width: 1024, dtype: "f16", seed: 1 });
  return directory;
}

const ALL_OUTPUTS = { return_sparse: true, return_colbert_vecs: true };

async function seconds(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return (performance.now() - started) / 1000;
}

/**
 * ~`tokens` tokens of plain English-like text: two dozen common words, nearly all one token each with
 * their leading space (1,000 texts of 222 words made 224,319 tokens with the specials).
 */
export function syntheticText(tokens: number, seed: number): string {
  const words = ["model", "vector", "search", "sparse", "dense", "token", "query", "document", "index", "score", "language", "retrieval",
    "weight", "layer", "embedding", "server", "memory", "batch", "quantised", "attention", "context", "lexical", "hybrid", "rank"];
  return syntheticTokens(tokens, seed).map((id) => words[id % words.length]).join(" ");
}

/**
 * One row of figures (seconds, tokens/s) for a server loaded with heads: `long` tokens alone, and
 * `requests` requests of 16 x 150 tokens (4 in flight), each dense only and with sparse + ColBERT; rerank of 1
 * query x 100 documents of ~200 tokens (hybrid, the default).
 */
export async function headsWorkloads(url: string, long: number, requests: number): Promise<Record<string, number>> {
  const embeddings = `${url}/v1/embeddings`;
  const longInput = [syntheticTokens(long - 2, long)];
  // with the heads first: any first-use cost (compute buffer pages) counts against them, not for them
  const allLong = await seconds(() => post(embeddings, { input: longInput, encoding_format: "base64", ...ALL_OUTPUTS }));
  const denseLong = await seconds(() => post(embeddings, { input: longInput, encoding_format: "base64" }));
  const batch = async (extra: object) => {
    let next = 0;
    const worker = async () => {
      while (next < requests) {
        const id = next++;
        const input = Array.from({ length: 16 }, (_, i) => syntheticTokens(150, id * 1000 + i));
        await post(embeddings, { input, encoding_format: "base64", ...extra });
      }
    };
    return seconds(() => Promise.all(Array.from({ length: 4 }, worker)));
  };
  const batchTokens = requests * 16 * 152;
  const allBatch = await batch(ALL_OUTPUTS);
  const denseBatch = await batch({});
  const documents = Array.from({ length: 100 }, (_, i) => syntheticText(200, 9000 + i));
  const rerank = await seconds(() => post(`${url}/v1/rerank`, { query: syntheticText(20, 1), documents }));
  return {
    [`${long} tokens, dense (s)`]: +denseLong.toFixed(2),
    [`${long} tokens, + sparse + ColBERT (s)`]: +allLong.toFixed(2),
    [`16x150 x${requests}, dense (tokens/s)`]: Math.round(batchTokens / denseBatch),
    [`16x150 x${requests}, + sparse + ColBERT (tokens/s)`]: Math.round(batchTokens / allBatch),
    "rerank 1 x 100 x ~200 tokens (s)": +rerank.toFixed(2),
  };
}

/**
 * One request for the ColBERT vectors (and dense vectors) of `inputs` inputs of `ids` token ids each; checks
 * that every row came back. Returns the answer's size in bytes.
 */
export async function colbertRequest(url: string, inputs: number, ids: number, encoding: "float" | "base64"): Promise<number> {
  const input = Array.from({ length: inputs }, (_, i) => syntheticTokens(ids, 50_000 + i));
  const text = await post(`${url}/v1/embeddings`, { input, encoding_format: encoding, return_colbert_vecs: true });
  const rows = (JSON.parse(text.toString()) as { data: { colbert_embedding: unknown[] }[] }).data.map((item) => item.colbert_embedding.length);
  // one vector per token after <s>: the ids and </s>
  if (rows.length !== inputs || rows.some((count) => count !== ids + 1)) throw new Error(`ColBERT rows per input: ${rows.join(", ")}`);
  return text.length;
}

/** Rerank (hybrid, every head) of one query against `documents` documents of ~`tokens` tokens each. Returns the tokens the server counted. */
export async function rerankRequest(url: string, documents: number, tokens: number): Promise<number> {
  const texts = Array.from({ length: documents }, (_, i) => syntheticText(tokens, 20_000 + i));
  const answer = JSON.parse((await post(`${url}/v1/rerank`, { query: syntheticText(20, 1), documents: texts })).toString()) as {
    results: unknown[];
    usage: { prompt_tokens: number };
  };
  if (answer.results.length !== documents) throw new Error(`${answer.results.length} scores for ${documents} documents`);
  return answer.usage.prompt_tokens;
}
