// A batch nobody wants any more is stopped: a client sends one long input and disconnects; the next
// request is answered within moments instead of after the whole input (llama.cpp's abort callback,
// checked between graph nodes). The native engine only: node-llama-cpp cannot stop an evaluation.
import { request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import t from "tap";
import { testModel } from "./helpers/models.js";
import { startTestServer } from "./support/app.js";

/**
 * Sized so one 8,190-token input takes well over 10 s on 2 cores (12 layers of width 256: ~1 TFLOP,
 * mostly attention), while a short input takes milliseconds. Ids only: a 4,096-token vocabulary.
 */
const SLOW = { layers: 12, width: 256, heads: 4, ffn: 1024, contextLength: 8192, vocab: 4096, fileType: "f32", seed: 3 } as const;

const server = await startTestServer(await testModel(SLOW));
t.teardown(() => server.close());

if (server.service.embedder.engine !== "native") {
  t.plan(0, "node-llama-cpp cannot stop a started evaluation");
} else {
  t.test("an abandoned long input is stopped; the next request is answered at once with unchanged vectors", async (t) => {
    const embed = (input: unknown) => server.app.inject({ method: "POST", url: "/v1/embeddings", payload: { input } });
    const short = [0, 100, 200, 300, 2];
    const before = (await embed(short)).json().data[0].embedding;

    await server.app.listen({ host: "127.0.0.1", port: 0 });
    const { port } = server.app.server.address() as AddressInfo;
    const long = Array.from({ length: 8190 }, (_, i) => (i === 0 ? 0 : i === 8189 ? 2 : 5 + ((i * 7919) % 4000)));
    const body = JSON.stringify({ input: long });
    await new Promise<void>((resolve) => {
      const req = httpRequest({ host: "127.0.0.1", port, method: "POST", path: "/v1/embeddings", headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } });
      req.on("error", () => resolve());
      // the batch has started when the client goes away
      req.end(body, () => setTimeout(() => { req.destroy(); resolve(); }, 1000));
    });
    const disconnected = performance.now();
    const after = await embed(short);
    const waited = performance.now() - disconnected;
    t.equal(after.statusCode, 200);
    t.ok(waited < 5000, `answered ${Math.round(waited)} ms after the disconnect`);
    t.same(after.json().data[0].embedding, before, "the vectors after the cancel equal those before");
    const metrics = await server.metrics.registry.getSingleMetricAsString("embedding_inputs_cancelled_total");
    t.match(metrics, /embedding_inputs_cancelled_total\{stage="running"\} 1/);
  });
}
