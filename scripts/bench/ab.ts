/**
 * Two builds of the native addon compared on the same input, in one process (`npm run bench:ab`):
 * single embeds alternate between them (A, B, A, B, ...), so both see the same minute of a shared host,
 * whose speed swings by 10-25% over minutes; the median of the paired ratios B/A is the result.
 *
 *   tsx scripts/bench/ab.ts --a <addon.node> --b <addon.node> [--quant q4_k_m] [--tokens 22] [--runs 100]
 *                           [--threads N] [--model file.gguf] [--attention f32|auto|int16|bf16]
 *
 * Each addon is its own statically linked llama.cpp, so both load side by side. Build one, copy
 * `native/build/Release/` aside, build the other. Without --model it uses the full-size synthetic BGE-M3
 * (test/helpers/models.ts FULL) of --quant. --attention (default f32) is the load option attentionProducts
 * (npm run profile's modes); an addon built before that option existed ignores it and runs F32.
 */
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { parseScriptOptions, scriptUsage } from "../cli-options.js";
import type { BgeM3FileType } from "../gguf/bge-m3.js";
import type { NativeAddon, NativeEmbeddingModel } from "../../src/engine/native/addon-types.js";
import { NATIVE_ATTENTION_MODES } from "../../src/engine/native/native-embedder.js";
import { FULL, testModel } from "../../test/helpers/models.js";
import { cpuClass, describeCpu } from "./cpu-class.js";
import { addonInput, median } from "./workloads.js";

const values = parseScriptOptions(import.meta.url, {
  a: { type: "string" },
  b: { type: "string" },
  quant: { type: "string", default: "q4_k_m" },
  model: { type: "string" },
  tokens: { type: "string", default: "22" },
  runs: { type: "string", default: "100" },
  threads: { type: "string" },
  attention: { type: "string", default: "f32" },
});
if (!values.a || !values.b) {
  process.stderr.write(`--a and --b are required\n\n${scriptUsage(import.meta.url)}\n`);
  process.exit(2);
}
const tokens = Number(values.tokens);
const runs = Number(values.runs);
const threads = Number(values.threads ?? Math.min(os.availableParallelism(), 16));
if (!Number.isInteger(tokens) || tokens < 3 || !Number.isInteger(runs) || runs < 1) {
  throw new Error("--tokens must be an integer >= 3 and --runs >= 1");
}
if (!Object.hasOwn(NATIVE_ATTENTION_MODES, values.attention!)) {
  throw new Error(`--attention must be one of ${Object.keys(NATIVE_ATTENTION_MODES).join(", ")}`);
}

const require = createRequire(import.meta.url);
const modelPath = values.model ?? (await testModel({ ...FULL, fileType: values.quant as BgeM3FileType }));
const contextSize = Math.max(512, tokens);
const load = async (file: string): Promise<NativeEmbeddingModel> => {
  const addon = require(path.resolve(file)) as NativeAddon;
  return addon.loadModel({ modelPath, contextSize, batchSize: contextSize, sequences: 1, threads, ...NATIVE_ATTENTION_MODES[values.attention!] });
};
const models = [await load(values.a), await load(values.b)];

const ids = addonInput(models[0].info, tokens);
const times: [number[], number[]] = [[], []];
try {
  for (const model of models) for (let i = 0; i < 3; i++) await model.embed([ids]); // warm-up
  for (let i = 0; i < runs; i++) {
    for (const j of [0, 1] as const) {
      const t0 = performance.now();
      await models[j].embed([ids]);
      times[j].push(performance.now() - t0);
    }
  }
} finally {
  for (const model of models) await model.dispose();
}

const ratios = times[1].map((t, i) => t / times[0][i]);
console.log(`${describeCpu(cpuClass())}\nmodel ${modelPath}, ${tokens} tokens, ${threads} threads, ${runs} alternations\n`);
console.log("| addon | median (ms) | min (ms) |\n| --- | ---: | ---: |");
console.log(`| A ${values.a} | ${median(times[0]).toFixed(1)} | ${Math.min(...times[0]).toFixed(1)} |`);
console.log(`| B ${values.b} | ${median(times[1]).toFixed(1)} | ${Math.min(...times[1]).toFixed(1)} |`);
console.log(`\nmedian of the paired ratios B/A: ${median(ratios).toFixed(3)}`);
