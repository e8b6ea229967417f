// A batch nobody wants any more is stopped: a client sends one long input and disconnects while the engine
// runs it; the engine's call ends cancelled (llama.cpp's abort callback, checked between graph nodes) instead
// of running the whole input, and the next request is answered with unchanged vectors. The native engine
// only: node-llama-cpp cannot stop an evaluation.
import { request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import t from "tap";
import { EmbedCancelledError } from "../src/engine/errors.js";
import { TINY, testModel } from "./helpers/models.js";
import { nativeAddonOrSkip } from "./helpers/native.js";
import { nextEngineCall, startTestServer } from "./support/app.js";

if (nativeAddonOrSkip(t)) {
  const server = await startTestServer(await testModel(TINY), { ENGINE: "native" });
  t.teardown(() => server.close());

  t.test("an abandoned long input is stopped; the next request is answered with unchanged vectors", async (t) => {
    const embed = (input: unknown) => server.app.inject({ method: "POST", url: "/v1/embeddings", payload: { input } });
    const short = [0, 100, 200, 300, 2];
    const before = (await embed(short)).json().data[0].embedding;

    await server.app.listen({ host: "127.0.0.1", port: 0 });
    const { port } = server.app.server.address() as AddressInfo;
    // 8,190 tokens: seconds of work for this model, against the milliseconds a disconnect takes to arrive
    const long = Array.from({ length: 8190 }, (_, i) => (i === 0 ? 0 : i === 8189 ? 2 : 5 + ((i * 7919) % 4000)));
    const body = JSON.stringify({ input: long });
    const call = nextEngineCall(server);
    const request = httpRequest({ host: "127.0.0.1", port, method: "POST", path: "/v1/embeddings", headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } });
    request.on("error", () => {});
    request.end(body);
    const running = await call;
    t.same(running.sequences.map((sequence) => sequence.length), [8190], "the long input reached the engine");
    request.destroy();

    t.type(await running.outcome, EmbedCancelledError, "the engine's call ended cancelled, not with the input's vector");
    const after = await embed(short);
    t.equal(after.statusCode, 200);
    t.same(after.json().data[0].embedding, before, "the vectors after the cancel equal those before");
    const metrics = await server.metrics.registry.getSingleMetricAsString("embedding_inputs_cancelled_total");
    t.match(metrics, /embedding_inputs_cancelled_total\{stage="running"\} 1/);
  });
}
