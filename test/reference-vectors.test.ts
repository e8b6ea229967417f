import t from "tap";
import { loadReferenceModel, referenceEmbedding } from "./helpers/reference.js";
import { TINY, testModel } from "./helpers/models.js";
import { cosine, startTestServer } from "./support/app.js";

// The maths of the whole path (tokens -> engine -> CLS pooling -> L2 -> JSON) against the
// independent float64 forward pass, on the F32 test model, through the HTTP API.
const modelPath = await testModel(TINY);
const server = await startTestServer(modelPath);
const reference = loadReferenceModel(modelPath);
t.teardown(async () => {
  reference.close();
  await server.close();
});

async function embed(input: unknown): Promise<number[][]> {
  const response = await server.app.inject({ method: "POST", url: "/v1/embeddings", payload: { input } });
  t.equal(response.statusCode, 200);
  return response.json().data.map((d: { embedding: number[] }) => d.embedding);
}

t.test("short texts match the reference forward pass", async (t) => {
  const texts = ["Hello world", "BGE-M3 is a multilingual embedding model.", "多语言嵌入"];
  const vectors = await embed(texts);
  const tokens = await server.service.embedder.tokenize(texts);
  tokens.forEach((ids, i) => {
    const similarity = cosine(vectors[i], referenceEmbedding(reference, Array.from(ids)));
    t.ok(similarity >= 0.9999, `text ${i}: cosine ${similarity}`);
  });
});

t.test("a 1,500-token input is embedded whole (not from its last 512-token chunk)", async (t) => {
  const ids = Array.from({ length: 1498 }, (_, i) => 1000 + ((i * 7919) % 200_000));
  const [vector] = await embed([ids]);
  const full = referenceEmbedding(reference, [0, ...ids, 2]);
  const similarity = cosine(vector, full);
  t.ok(similarity >= 0.9999, `cosine to the reference ${similarity}`);
  // The threshold tells a whole evaluation from a partial one: half the input scores below it.
  const firstHalf = referenceEmbedding(reference, [0, ...ids.slice(0, 700), 2]);
  t.ok(cosine(vector, firstHalf) < 0.9999, "a partial evaluation would fail this test");
});

t.test("dimensions is a prefix of the reference vector, renormalised", async (t) => {
  const response = await server.app.inject({ method: "POST", url: "/v1/embeddings", payload: { input: "prefix", dimensions: 8 } });
  const [ids] = await server.service.embedder.tokenize(["prefix"]);
  const full = referenceEmbedding(reference, Array.from(ids));
  t.ok(cosine(response.json().data[0].embedding, Array.from(full.subarray(0, 8))) >= 0.9999);
});
