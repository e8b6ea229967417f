/**
 * `npm run bench`: both engines on synthetic full-size BGE-M3 files (24 layers, 1024 wide, the real
 * vocabulary, random weights: the real model's shapes and cost), each server in its own process,
 * on this machine, in one run. Prints markdown tables; numbers, not pass/fail.
 *
 *   npm run bench -- [--quants q8_0,q4_k_m] [--engines native,node-llama-cpp,native:512]
 *                    [--long 1024,2048,4096,6521,8190] [--long-engines native,node-llama-cpp]
 *                    [--sections fidelity,latency,throughput,long,heads,paired-latency] [--requests 16]
 *                    [--heads-long 8190] [--rounds 40]
 *                    [--llama-server /path/to/llama-server] [--heads DIR|none]
 * An engine written `name:N` runs with MAX_BATCH_TOKENS=N, `name+f32` (or +int16, +bf16) with that ATTENTION_PRECISION
 * instead of the default auto, `name@DIR` runs the server of another checkout (DIR/src/main.ts, its own addon), to
 * compare two versions of the server (all may be combined: `native:512+f32@../old`). With --llama-server, the engine `llama-server`
 * is llama.cpp's own server on the same file (latency and throughput; build it from the same llama.cpp).
 * Native servers load BGE-M3-shaped random heads (as production loads the real ones); the heads section
 * (native engines only) compares dense-only requests with dense + sparse + ColBERT ones and times a rerank.
 * paired-latency runs every engine's server at once and alternates ~20-token requests between them
 * (--rounds rounds), for p50 ratios that hold on a host whose speed drifts (scripts/bench/paired-latency.ts).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseScriptOptions } from "./cli-options.js";
import type { BgeM3FileType } from "./gguf/bge-m3.js";
import { repoRoot } from "./gguf/vocab.js";
import { FULL, testModel } from "../test/helpers/models.js";
import { startLlamaServer, startServerProcess, type ServerProcess } from "./bench/server-process.js";
import { pairedLatencies } from "./bench/paired-latency.js";
import { resolveThreads } from "../src/engine/threads.js";
import { embedTokens, embedTokensFloat, latencies, percentile, syntheticTokens, throughput } from "./bench/workloads.js";
import { cosine, loadReferenceModel, referenceEmbedding } from "../test/helpers/reference.js";
import { cpuClass, describeCpu } from "./bench/cpu-class.js";
import { benchHeads, headsWorkloads } from "./bench/heads.js";

const values = parseScriptOptions(import.meta.url, {
  quants: { type: "string", default: "q8_0,q4_k_m" },
  engines: { type: "string", default: "native,node-llama-cpp" },
  long: { type: "string", default: "1024,2048,4096,6521,8190" },
  "long-engines": { type: "string" },
  sections: { type: "string", default: "fidelity,latency,throughput,long" },
  "heads-long": { type: "string", default: "8190" },
  heads: { type: "string" },
  requests: { type: "string", default: "16" },
  rounds: { type: "string", default: "40" },
  threads: { type: "string", default: "0" },
  "llama-server": { type: "string" },
});
const list = (text: string) => text.split(",").map((s) => s.trim()).filter(Boolean);
const quants = list(values.quants!) as BgeM3FileType[];
const engines = list(values.engines!);
const longLengths = list(values.long!).map(Number);
const sections = new Set(list(values.sections!));
const longEngines = new Set(list(values["long-engines"] ?? values.engines!));

const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
const rows: Record<string, string | number>[] = [];
const longRows: Record<string, string | number>[] = [];
const headsRows: Record<string, string | number>[] = [];
const pairedRows: Record<string, string | number>[] = [];
// native servers load heads as production does; --heads none measures without them
const headsDir = values.heads ?? (await benchHeads(path.join(repoRoot, ".cache", "bench")));

/** An error as one table cell: one line, at most 200 characters. */
function shortError(error: unknown): string {
  return (error as Error).message.replace(/\s+/g, " ").trim().slice(0, 200);
}

function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/**
 * Fidelity: cosine of each file's vectors to the float64 reference forward pass on the F32 weights
 * the quantised files were made from (same seed), for a few inputs of 16 to 64 tokens.
 */
const fidelityInputs = [16, 24, 32, 48, 64].map((length) => syntheticTokens(length, length * 31));
let fidelityReference: Float64Array[] | undefined;
async function referenceVectors(): Promise<Float64Array[]> {
  if (!fidelityReference) {
    log("fidelity: reference forward pass on the F32 weights");
    const model = loadReferenceModel(await testModel({ ...FULL, fileType: "f32" }));
    fidelityReference = fidelityInputs.map((ids) => referenceEmbedding(model, [0, ...ids, 2]));
    model.close();
  }
  return fidelityReference;
}

// before any server starts: the reference pass blocks this process for minutes, and a server's idle
// keep-alive connection closed meanwhile made the next request fail ("fetch failed")
if (sections.has("fidelity")) await referenceVectors();

for (const quant of quants) {
  log(`model ${quant}: generating (cached after the first run)`);
  const modelPath = await testModel({ ...FULL, fileType: quant });
  if (sections.has("paired-latency")) await pairedSection(quant, modelPath);
  if (![...sections].some((section) => section !== "paired-latency")) continue;
  for (const engine of engines) {
    log(`${quant} / ${engine}: starting`);
    const { name: engineName } = engineSpec(engine);
    const server = await startEngine(engine, modelPath);
    const row: Record<string, string | number> = { model: quant, engine };
    try {
      row["start to healthy (s)"] = +server.secondsToHealthy.toFixed(2);
      row["idle RSS (MB)"] = mb(server.rssBytes());
      await embedTokens(server.url, [syntheticTokens(20, 1)]);
      if (sections.has("fidelity")) {
        const reference = await referenceVectors();
        const vectors = await embedTokensFloat(server.url, fidelityInputs);
        const cosines = vectors.map((vector, i) => cosine(vector, reference[i]));
        row["cosine to F32 reference (min)"] = +Math.min(...cosines).toFixed(5);
      }
      if (sections.has("latency")) {
        await latencies(server.url, { requests: 3, tokens: 20 });
        const sorted = await latencies(server.url, { requests: 40, tokens: 20 });
        row["~20-token p50 (ms)"] = +percentile(sorted, 50).toFixed(1);
        row["~20-token p95 (ms)"] = +percentile(sorted, 95).toFixed(1);
        log(`${quant} / ${engine}: p50 ${row["~20-token p50 (ms)"]} ms`);
      }
      if (sections.has("throughput")) {
        const tokensPerSecond = await throughput(server.url, { requests: Number(values.requests), perRequest: 16, tokens: 150, inFlight: 4 });
        row["16x150 tokens, 4 in flight (tokens/s)"] = Math.round(tokensPerSecond);
        log(`${quant} / ${engine}: ${row["16x150 tokens, 4 in flight (tokens/s)"]} tokens/s`);
      }
      if (sections.has("long") && longEngines.has(engine)) {
        for (const length of longLengths) {
          server.resetPeak();
          const started = performance.now();
          await embedTokens(server.url, [syntheticTokens(length - 2, length)]);
          const seconds = (performance.now() - started) / 1000;
          longRows.push({ model: quant, engine, tokens: length, "time (s)": +seconds.toFixed(2), "peak RSS (MB)": mb(server.peakRssBytes()) });
          log(`${quant} / ${engine}: ${length} tokens in ${seconds.toFixed(1)} s, peak ${mb(server.peakRssBytes())} MB`);
        }
      }
      if (sections.has("heads") && engineName === "native") {
        log(`${quant} / ${engine}: heads`);
        headsRows.push({ model: quant, engine, ...(await headsWorkloads(server.url, Number(values["heads-long"]), Number(values.requests))) });
      }
    } catch (error) {
      row.error = shortError(error);
      log(`${quant} / ${engine}: ${row.error}`);
    } finally {
      await server.stop();
    }
    rows.push(row);
  }
}

/** `name[:batchTokens][+f32|+int16|+bf16][@checkout]` as its parts. */
function engineSpec(engine: string): { name: string; batchTokens?: string; attention?: string; checkout?: string } {
  const [spec, checkout] = engine.split("@");
  const [base, ...flags] = spec.split("+");
  const [name, batchTokens] = base.split(":");
  if (flags.length > 1 || flags.some((flag) => !["f32", "int16", "bf16"].includes(flag))) {
    throw new Error(`engine ${engine}: the modifier is one of +f32, +int16, +bf16`);
  }
  return { name, batchTokens, attention: flags[0], checkout };
}

async function startEngine(engine: string, modelPath: string): Promise<ServerProcess> {
  const { name: engineName, batchTokens, attention, checkout } = engineSpec(engine);
  const entry = checkout ? ["--import", "tsx", path.resolve(checkout, "src", "main.ts")] : undefined;
  return engineName === "llama-server"
    ? startLlamaServer(values["llama-server"] ?? "llama-server", modelPath, resolveThreads(Number(values.threads)))
    : startServerProcess({
      EMBEDDING_MODEL: modelPath,
      ENGINE: engineName,
      THREADS: values.threads!,
      REQUEST_TIMEOUT_MS: "0", // one long input may take minutes
      M3_HEADS: engineName === "native" ? headsDir : "none",
      ...(batchTokens ? { MAX_BATCH_TOKENS: batchTokens } : {}),
      ...(attention ? { ATTENTION_PRECISION: attention } : {}),
    }, undefined, entry);
}

async function pairedSection(quant: string, modelPath: string): Promise<void> {
  log(`${quant}: paired latency, ${engines.join(", ")} up at once`);
  const servers: ServerProcess[] = [];
  try {
    for (const engine of engines) servers.push(await startEngine(engine, modelPath));
    const results = await pairedLatencies(servers.map((server) => server.url), { rounds: Number(values.rounds), tokens: 20 });
    results.forEach((result, i) => pairedRows.push({
      model: quant,
      engine: engines[i],
      "~20-token p50 (ms)": +result.p50Ms.toFixed(1),
      "~20-token p95 (ms)": +result.p95Ms.toFixed(1),
      [`median ratio to ${engines[0]}`]: +result.medianRatioToFirst.toFixed(3),
    }));
    log(`${quant}: paired p50 ${results.map((result, i) => `${engines[i]} ${result.p50Ms.toFixed(1)} ms`).join(", ")}`);
  } catch (error) {
    // as the per-engine sections do: the run goes on to the next model and prints what it has
    const message = shortError(error);
    pairedRows.push({ model: quant, engine: engines.join(", "), error: message });
    log(`${quant}: paired latency: ${message}`);
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
}

function table(data: Record<string, string | number>[]): string {
  if (data.length === 0) return "";
  const columns = [...new Set(data.flatMap((row) => Object.keys(row)))];
  return [
    `| ${columns.join(" | ")} |`,
    `| ${columns.map(() => "---").join(" | ")} |`,
    ...data.map((row) => `| ${columns.map((c) => row[c] ?? "").join(" | ")} |`),
  ].join("\n");
}

const outDir = path.join(repoRoot, ".cache", "bench");
mkdirSync(outDir, { recursive: true });
const outFile = path.join(outDir, `bench-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
const cpu = cpuClass();
writeFileSync(outFile, JSON.stringify({ cpu, rows, longRows, headsRows, pairedRows }, null, 2));
process.stdout.write(`\n${describeCpu(cpu)}\n\n${table(rows)}\n\n${table(longRows)}\n\n${table(headsRows)}\n\n${table(pairedRows)}\n\n(raw numbers: ${outFile})\n`);
