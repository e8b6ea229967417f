/**
 * `npm run loadtest`: drives a server (started here, in its own process, on a generated model unless
 * EMBEDDING_MODEL is set) at a fixed concurrency with autocannon, and prints throughput, latency
 * percentiles, errors, and the server's RSS before and after.
 *
 *   npm run loadtest -- [--connections 8] [--amount 10000] [--inputs 1] [--tokens 20]
 */
import autocannon from "autocannon";
import { parseScriptOptions } from "./cli-options.js";
import { TINY, testModel } from "../test/helpers/models.js";
import { startServerProcess } from "./bench/server-process.js";
import { embedTokens, syntheticTokens } from "./bench/workloads.js";

const values = parseScriptOptions(import.meta.url, {
  connections: { type: "string", default: "8" },
  amount: { type: "string", default: "10000" },
  inputs: { type: "string", default: "1" },
  tokens: { type: "string", default: "20" },
});

const modelPath = process.env.EMBEDDING_MODEL ?? (await testModel(TINY));
const server = await startServerProcess({ EMBEDDING_MODEL: modelPath });
const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
try {
  const body = JSON.stringify({
    input: Array.from({ length: Number(values.inputs) }, (_, i) => syntheticTokens(Number(values.tokens), i)),
    encoding_format: "base64",
  });
  // Warm up so the first allocations are not counted as growth.
  for (let i = 0; i < 50; i++) await embedTokens(server.url, [syntheticTokens(Number(values.tokens), i)]);
  const rssBefore = server.rssBytes();
  const result = await autocannon({
    url: `${server.url}/v1/embeddings`,
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
    connections: Number(values.connections),
    amount: Number(values.amount),
  });
  const rssAfter = server.rssBytes();
  const non2xx = result.non2xx + result.errors + result.timeouts;
  process.stdout.write(
    [
      `model: ${modelPath}`,
      `requests: ${result.requests.total} at ${values.connections} connections, ${values.inputs} input(s) of ${Number(values.tokens) + 2} tokens each`,
      `throughput: ${result.requests.average.toFixed(1)} requests/s`,
      `latency ms: p50 ${result.latency.p50}  p90 ${result.latency.p90}  p99 ${result.latency.p99}  max ${result.latency.max}`,
      `errors: ${non2xx} (non-2xx ${result.non2xx}, socket errors ${result.errors}, timeouts ${result.timeouts})`,
      `server RSS MB: before ${mb(rssBefore)}  after ${mb(rssAfter)}  growth ${mb(rssAfter - rssBefore)}`,
    ].join("\n") + "\n",
  );
  if (non2xx > 0) process.exitCode = 1;
} finally {
  await server.stop();
}
