// `npm test`: the tap suite on the engine the server would use (ENGINE, default auto: native when
// built), then, when that was the native engine, the engine-facing files again on node-llama-cpp,
// so both engines pass the same contract. Ends with one plain "N passed, N failed" line.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";

// Files whose outcome depends on the engine: vectors, tokens, what the engine returns, how it
// tokenizes. Auth, CORS, docs, limits, the queue, overload, shutdown and the OpenAI client's decoding
// sit above the Embedder interface and run once (a second engine cost minutes of model loads on 2 cores).
const ENGINE_FACING = [
  "test/embeddings-api.test.ts",
  "test/reference-vectors.test.ts",
  "test/faults.test.ts",
  "test/tokenize-off-loop.test.ts",
];

function tap(args, env) {
  return new Promise((resolve) => {
    const child = spawn("npx", ["tap", ...args], { stdio: ["inherit", "pipe", "inherit"], env: { ...process.env, ...env } });
    let tail = "";
    child.stdout.on("data", (chunk) => {
      process.stdout.write(chunk);
      tail = (tail + chunk.toString()).slice(-4096);
    });
    child.on("close", (code) => {
      const summary = [...tail.matchAll(/# \{ ?total: (\d+)(?:, pass: (\d+))?(?:, fail: (\d+))?[^}]*\}/g)].at(-1);
      resolve({ code: code ?? 1, passed: Number(summary?.[2] ?? 0), failed: Number(summary?.[3] ?? (code === 0 ? 0 : 1)) });
    });
  });
}

const args = process.argv.slice(2);
const runs = [await tap(args, {})];
const nativeBuilt = existsSync(new URL("../native/build/Release/bge_m3_native.node", import.meta.url));
if (args.length === 0 && !process.env.ENGINE && nativeBuilt) {
  process.stdout.write("\n# the engine-facing tests again on the node-llama-cpp engine\n");
  runs.push(await tap(ENGINE_FACING, { ENGINE: "node-llama-cpp" }));
}
const passed = runs.reduce((sum, run) => sum + run.passed, 0);
const failed = runs.reduce((sum, run) => sum + run.failed, 0);
process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
process.exit(runs.every((run) => run.code === 0) ? 0 : 1);
