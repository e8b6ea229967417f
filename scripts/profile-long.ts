/**
 * Where the time of one long input goes in the native engine, per ggml op, at several lengths
 * (`npm run profile`): loads the addon with its profiling eval callback (every graph node timed on its
 * own, so the total is a little above an unprofiled run) and prints a markdown table op -> ms (%).
 *
 *   tsx scripts/profile-long.ts [--model file.gguf] [--quant q8_0] [--lengths 1024,2048,4096,8190]
 *                               [--attention auto|f32|int16|bf16|f16|plain] [--threads N]
 *
 * --attention: auto (default, the server's CPU setting: flash attention with F32 K/V, patch 0003, its products
 * on int16 or BF16 for quantised weights where the build has them), f32 (that kernel with F32 products), int16 and
 * bf16 (with those products, ATTENTION_PRECISION; F32 where the build lacks them), f16 (llama.cpp's stock CPU flash
 * attention, K/V cast to F16), plain (flash attention off).
 *
 * Without --model it uses the full-size synthetic BGE-M3 (test/helpers/models.ts FULL, generated once).
 */
import os from "node:os";
import { parseScriptOptions } from "./cli-options.js";
import type { BgeM3FileType } from "./gguf/bge-m3.js";
import { FULL, testModel } from "../test/helpers/models.js";
import { loadAddon, nativeAddonLoadError } from "../src/engine/native/load-addon.js";
import { NATIVE_ATTENTION_MODES } from "../src/engine/native/native-embedder.js";
import { cpuClass, describeCpu, weightKernel } from "./bench/cpu-class.js";
import { addonInput } from "./bench/workloads.js";

const values = parseScriptOptions(import.meta.url, {
  model: { type: "string" },
  quant: { type: "string", default: "q8_0" },
  lengths: { type: "string", default: "1024,2048,4096,8190" },
  attention: { type: "string", default: "auto" },
  threads: { type: "string" },
});

const addon = loadAddon();
if (!addon) throw new Error(`native addon not built: ${nativeAddonLoadError()}`);
const lengths = values.lengths!.split(",").map(Number);
const modelPath = values.model ?? (await testModel({ ...FULL, fileType: values.quant as BgeM3FileType }));
const threads = Number(values.threads ?? Math.min(os.availableParallelism(), 16));
if (!Object.hasOwn(NATIVE_ATTENTION_MODES, values.attention!)) {
  throw new Error(`--attention must be one of ${Object.keys(NATIVE_ATTENTION_MODES).join(", ")}`);
}
const attention = NATIVE_ATTENTION_MODES[values.attention!];

const maxLen = Math.max(...lengths);
const model = await addon.loadModel({
  modelPath, contextSize: maxLen, batchSize: maxLen, sequences: 1, threads, profile: true, ...attention,
});
const ids = (n: number) => addonInput(model.info, n);

const results: { len: number; wall: number; ops: Record<string, [number, number]> }[] = [];
try {
  await model.embed([ids(8)]); // warm-up
  model.takeProfile();
  for (const len of lengths) {
    const t0 = performance.now();
    await model.embed([ids(len)]);
    const wall = performance.now() - t0;
    results.push({ len, wall, ops: model.takeProfile() });
    console.error(`${len} tokens: ${(wall / 1000).toFixed(1)} s`);
  }
} finally {
  await model.dispose();
}

const opTotals = new Map<string, number>();
for (const r of results) for (const [op, [ms]] of Object.entries(r.ops)) opTotals.set(op, (opTotals.get(op) ?? 0) + ms);
const ops = [...opTotals.entries()].sort((a, b) => b[1] - a[1]).map(([op]) => op);

const cpu = cpuClass();
/** "MUL_MAT (weights q8_0)" -> "MUL_MAT (weights q8_0: ours, int8 avx2)": where each product ran */
const opName = (op: string) => op.replace(/\(weights (\w+)\)/, (_, type: string) => `(weights ${type}: ${weightKernel(cpu, type.toUpperCase())})`);

console.log(`\n${describeCpu(cpu)}\nmodel ${modelPath}, attention ${values.attention}, ${threads} threads\n`);
console.log(`| op | ${results.map((r) => `${r.len} tok ms (%)`).join(" | ")} |`);
console.log(`|---|${results.map(() => "---:").join("|")}|`);
for (const op of ops) {
  const cells = results.map((r) => {
    const total = Object.values(r.ops).reduce((s, [ms]) => s + ms, 0);
    const ms = r.ops[op]?.[0] ?? 0;
    return `${ms.toFixed(0)} (${((100 * ms) / total).toFixed(1)}%)`;
  });
  console.log(`| ${opName(op)} | ${cells.join(" | ")} |`);
}
console.log(`| **sum of ops** | ${results.map((r) => Object.values(r.ops).reduce((s, [ms]) => s + ms, 0).toFixed(0)).join(" | ")} |`);
console.log(`| wall | ${results.map((r) => r.wall.toFixed(0)).join(" | ")} |`);
