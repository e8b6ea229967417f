// Limits through the real server: a request that could never fit is a 400 naming the limit (never a
// retryable 503), and queue room is reserved before anything is tokenized. The engine is held at a
// gate where a test needs a full queue; what is refused never reaches it, so one engine suffices.
import t from "tap";
import { TINY, testModel } from "./helpers/models.js";
import { holdEngine, startTestServer, type TestServer } from "./support/app.js";

const modelPath = await testModel(TINY);
const ids = (length: number, seed: number) => Array.from({ length }, (_, i) => 1000 + ((seed * 7919 + i * 104729) % 200_000));
const embed = (server: TestServer, input: unknown) => server.app.inject({ method: "POST", url: "/v1/embeddings", payload: { input } });

/** Counts the texts the engine is asked to tokenize. */
function countTokenized(server: TestServer): () => number {
  const embedder = server.service.embedder;
  const original = embedder.tokenize.bind(embedder);
  let texts = 0;
  embedder.tokenize = (batch) => {
    texts += batch.length;
    return original(batch);
  };
  return () => texts;
}

t.test("a request over MAX_REQUEST_TOKENS is a 400 naming it, never a 503", async (t) => {
  // 1,100 inputs of 1,000 tokens: more than MAX_QUEUE_TOKENS too, which used to mean 503 forever
  const server = await startTestServer(modelPath);
  t.teardown(() => server.close());
  const refused = await embed(server, Array.from({ length: 1100 }, (_, i) => ids(1000, i)));
  t.equal(refused.statusCode, 400);
  t.notOk(refused.headers["retry-after"], "nothing to retry");
  t.equal(refused.json().error.code, "request_too_large");
  t.equal(refused.json().error.param, "input");
  t.match(refused.json().error.message, /at least 1100000 tokens.*300000 allowed per request \(MAX_REQUEST_TOKENS\)/);
});

t.test("while the queue is full, a request that fits later gets 503, one that never fits 400", async (t) => {
  const server = await startTestServer(modelPath, {
    MAX_QUEUE: "4", MAX_INPUTS: "4", MAX_BATCH_SEQUENCES: "1", CONTEXT_SIZE: "1024", MAX_REQUEST_TOKENS: "2048",
  });
  t.teardown(() => server.close());
  const { open, entered } = holdEngine(server);
  const filling = embed(server, [ids(10, 1), ids(10, 2), ids(10, 3), ids(10, 4)]);
  await entered; // one input held in the engine, three in the queue
  t.equal((await embed(server, [ids(10, 5), ids(10, 6)])).statusCode, 503, "fits, but not now");
  const never = await embed(server, [ids(1000, 7), ids(1000, 8), ids(1000, 9)]);
  t.equal(never.statusCode, 400, "never fits");
  t.match(never.json().error.message, /MAX_REQUEST_TOKENS/);
  const texts = Array.from({ length: 4 }, () => "word ".repeat(600)); // 602 tokens each
  t.equal((await embed(server, texts)).statusCode, 503, "texts are counted only once admitted: while full, 503");
  open();
  t.equal((await filling).statusCode, 200);
  const counted = await embed(server, texts);
  t.equal(counted.statusCode, 400, "texts over the limit: a 400 once their tokens are counted");
  t.match(counted.json().error.message, /has 2408 tokens.*2048 allowed per request \(MAX_REQUEST_TOKENS\)/);
  t.equal((await embed(server, texts.slice(0, 2))).statusCode, 200, "under the limit");
});

t.test("admission comes before tokenizing: a full queue answers 503 without tokenizing", async (t) => {
  const server = await startTestServer(modelPath, { MAX_QUEUE: "4", MAX_INPUTS: "4", MAX_BATCH_SEQUENCES: "1" });
  t.teardown(() => server.close());
  const tokenized = countTokenized(server);
  const { open, entered } = holdEngine(server);
  const filling = embed(server, [ids(10, 1), ids(10, 2), ids(10, 3), ids(10, 4)]);
  await entered; // one input held in the engine, three in the queue
  const refused = await embed(server, ["a text", "another text"]);
  t.equal(refused.statusCode, 503);
  t.equal(refused.headers["retry-after"], "1");
  t.equal(refused.json().error.code, "server_overloaded");
  t.equal(tokenized(), 0, "nothing was tokenized for the refused request");
  open();
  t.equal((await filling).statusCode, 200);
  const after = await embed(server, ["a text", "another text", "a third", "a fourth"]);
  t.equal(after.statusCode, 200, "the reserved room was given back: the whole queue is free again");
  t.equal(tokenized(), 4);
  t.doesNotThrow(() => server.service.scheduler.admit(4, server.config.maxQueueTokens).release(), "nothing is still held");
});
