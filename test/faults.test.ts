// A non-finite vector (NaN or Infinity, as fp16 overflow gives) is never sent: JSON.stringify would turn
// NaN into null inside the embedding array, which a vector database then stores. The engine's output is
// poisoned for one input (an injected fault), through the real server on the engine under test.
import t from "tap";
import { TINY, testModel } from "./helpers/models.js";
import { startTestServer } from "./support/app.js";

const server = await startTestServer(await testModel(TINY));
t.teardown(() => server.close());
const POISON = 77_777;
const dim = server.service.embedder.info.dimensions;
const embed = (input: unknown) => server.app.inject({ method: "POST", url: "/v1/embeddings", payload: { input } });

t.test("a non-finite vector fails its own request with a 500 saying so; the rest of the batch is served", async (t) => {
  const healthy = "a healthy input";
  const expected = (await embed(healthy)).json().data[0].embedding;
  const embedder = server.service.embedder;
  const original = embedder.embedBatch.bind(embedder);
  let poisonValue = Number.NaN;
  embedder.embedBatch = async (sequences, signal) => {
    const packed = await original(sequences, signal);
    sequences.forEach((sequence, row) => sequence.includes(POISON) && (packed[row * dim + 3] = poisonValue));
    return packed;
  };
  t.teardown(() => (embedder.embedBatch = original));

  for (const value of [Number.NaN, Number.POSITIVE_INFINITY]) {
    poisonValue = value;
    const [bad, good] = await Promise.all([embed([[0, 100, 2], [0, POISON, 2]]), embed(healthy)]);
    t.equal(bad.statusCode, 500, String(value));
    t.same(bad.json(), {
      error: {
        message: "The model produced a non-finite vector (NaN or Infinity) for 'input[1]'; it was not sent.",
        type: "server_error",
        param: "input[1]",
        code: "non_finite_embedding",
      },
    });
    t.notMatch(bad.body, /"data"|null/, "no vector went out");
    t.equal(good.statusCode, 200, "the other request is unaffected");
    t.same(good.json().data[0].embedding, expected);
  }
  const metrics = await server.metrics.registry.getSingleMetricAsString("embedding_non_finite_vectors_total");
  t.match(metrics, /embedding_non_finite_vectors_total 2/);
});
