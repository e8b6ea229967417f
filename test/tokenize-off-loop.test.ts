// Tokenizing a large body runs off the event loop on both engines (node-llama-cpp tokenizes synchronously
// on its caller's thread, so calls that large run on a worker thread): while the engine's tokenize call for
// a 2 MB text is in flight, the loop keeps turning and the server keeps answering. Counted in turns of the
// loop and answers, not milliseconds: a tokenize on the loop would settle before the loop turned once.
import t from "tap";
import { TINY, testModel } from "./helpers/models.js";
import { startTestServer } from "./support/app.js";

const server = await startTestServer(await testModel(TINY));
t.teardown(() => server.close());

t.test("the event loop keeps turning while a large body is tokenized", async (t) => {
  const embedder = server.service.embedder;
  const original = embedder.tokenize;
  let inFlight = false;
  let calls = 0;
  embedder.tokenize = (texts) => {
    calls++;
    inFlight = true;
    const result = original.call(embedder, texts);
    // runs as soon as the call settles: in the same turn when tokenizing ran on the loop
    void result.finally(() => (inFlight = false)).catch(() => undefined);
    return result;
  };
  t.teardown(() => (embedder.tokenize = original));

  let turns = 0;
  const ticker = setInterval(() => inFlight && turns++, 1);
  const answered: number[] = [];
  let done = false;
  const probe = (async () => {
    while (!done) {
      const status = (await server.app.inject({ method: "GET", url: "/health" })).statusCode;
      if (inFlight) answered.push(status);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  const response = await server.app.inject({ method: "POST", url: "/v1/embeddings", payload: { input: "word ".repeat(400_000) } });
  done = true;
  clearInterval(ticker);
  await probe;
  t.equal(response.statusCode, 400, "400,002 tokens: more than the context");
  t.match(response.json().error.message, /400002 tokens/);
  t.equal(calls, 1, "one tokenize call");
  t.ok(turns >= 3, `the loop turned ${turns} times while the text was tokenized`);
  t.ok(answered.length >= 3 && answered.every((status) => status === 200), `/health answered ${answered.length} times meanwhile`);
});
