// Tokenizing a large body runs off the event loop on both engines: while a 10 MB text is tokenized the
// server keeps answering (node-llama-cpp tokenizes synchronously on its caller's thread, so calls that
// large run on a worker thread).
import t from "tap";
import { TINY, testModel } from "./helpers/models.js";
import { startTestServer } from "./support/app.js";

const server = await startTestServer(await testModel(TINY));
t.teardown(() => server.close());

t.test("the event loop keeps turning while a large body is tokenized", async (t) => {
  const text = "word ".repeat(2_000_000);
  let last = performance.now();
  let longestGap = 0;
  const ticker = setInterval(() => {
    const now = performance.now();
    longestGap = Math.max(longestGap, now - last);
    last = now;
  }, 10);
  let tokenizing = true;
  const health: number[] = [];
  const probe = (async () => {
    while (tokenizing) {
      health.push((await server.app.inject({ method: "GET", url: "/health" })).statusCode);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const started = performance.now();
  const response = await server.app.inject({ method: "POST", url: "/v1/embeddings", payload: { input: text } });
  const tookMs = performance.now() - started;
  tokenizing = false;
  clearInterval(ticker);
  await probe;
  t.equal(response.statusCode, 400, "2,000,002 tokens: more than the context");
  t.match(response.json().error.message, /2000002 tokens/);
  t.ok(health.length >= 3 && health.every((s) => s === 200), `/health answered ${health.length} times meanwhile`);
  // parsing and validating the 10 MB body stays on the loop (~100 ms); the tokenizing (seconds) does not
  t.ok(longestGap < Math.min(1000, tookMs / 2), `longest event-loop stall ${Math.round(longestGap)} ms of ${Math.round(tookMs)} ms`);
});
