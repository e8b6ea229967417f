/**
 * What attention's products cost in fidelity and buy in time on one long input (`npm run bench:attention`): the
 * model loaded once per --attention mode (npm run profile's modes), one input of --tokens embedded by each in turn,
 * --rounds times; prints each mode's 1 - cosine to the first mode's vector and its median time ratio to it.
 *
 *   tsx scripts/bench/attention.ts [--model file.gguf] [--quant q8_0] [--init fan-in|bert] [--tokens 4096]
 *                                  [--modes f32,auto] [--rounds 3] [--threads N]
 *
 * Without --model it uses the full-size synthetic BGE-M3 (test/helpers/models.ts FULL) of --quant and --init
 * (bert: BERT's initial weight scale, the smaller attention logits of trained BERT-family models).
 */
import os from "node:os";
import { parseScriptOptions } from "../cli-options.js";
import type { BgeM3FileType, BgeM3Init } from "../gguf/bge-m3.js";
import { loadAddon, nativeAddonLoadError } from "../../src/engine/native/load-addon.js";
import type { NativeEmbeddingModel } from "../../src/engine/native/addon-types.js";
import { NATIVE_ATTENTION_MODES } from "../../src/engine/native/native-embedder.js";
import { FULL, testModel } from "../../test/helpers/models.js";
import { cosine } from "../../test/helpers/reference.js";
import { cpuClass, describeCpu } from "./cpu-class.js";
import { addonInput, median } from "./workloads.js";

const values = parseScriptOptions(import.meta.url, {
  model: { type: "string" },
  quant: { type: "string", default: "q8_0" },
  init: { type: "string", default: "fan-in" },
  tokens: { type: "string", default: "4096" },
  modes: { type: "string", default: "f32,auto" },
  rounds: { type: "string", default: "3" },
  threads: { type: "string" },
});
const addon = loadAddon();
if (!addon) throw new Error(`native addon not built: ${nativeAddonLoadError()}`);
const tokens = Number(values.tokens);
const rounds = Number(values.rounds);
const threads = Number(values.threads ?? Math.min(os.availableParallelism(), 16));
const modes = values.modes!.split(",");
for (const mode of modes) {
  if (!Object.hasOwn(NATIVE_ATTENTION_MODES, mode)) throw new Error(`--modes: ${mode} is not one of ${Object.keys(NATIVE_ATTENTION_MODES).join(", ")}`);
}
const modelPath = values.model ??
  (await testModel({ ...FULL, fileType: values.quant as BgeM3FileType, init: values.init as BgeM3Init }));

console.log(`${describeCpu(cpuClass())}\nmodel ${modelPath}, ${tokens} tokens, ${threads} threads\n`);
const models: NativeEmbeddingModel[] = [];
try {
  for (const mode of modes) {
    models.push(await addon.loadModel({
      modelPath, contextSize: tokens, batchSize: tokens, sequences: 1, threads, ...NATIVE_ATTENTION_MODES[mode],
    }));
  }
  const ids = Uint32Array.from(addonInput(models[0].info, tokens));
  const seconds: number[][] = models.map(() => []);
  const vectors: Float32Array[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const [j, model] of models.entries()) {
      const t0 = performance.now();
      vectors[j] = await model.embed([ids]);
      seconds[j].push((performance.now() - t0) / 1000);
    }
  }
  console.log(`| mode | ran | 1 - cosine to ${modes[0]} | median time | median ratio to ${modes[0]} |\n| --- | --- | ---: | ---: | ---: |`);
  for (const [j, mode] of modes.entries()) {
    const ratio = median(seconds[j].map((s, r) => s / seconds[0][r]));
    const gap = 1 - cosine(vectors[j], vectors[0]);
    console.log(`| ${mode} | ${models[j].info.attentionProducts} | ${gap.toExponential(2)} | ${median(seconds[j]).toFixed(2)} s | ${ratio.toFixed(3)} |`);
  }
} finally {
  for (const model of models) await model.dispose();
}
