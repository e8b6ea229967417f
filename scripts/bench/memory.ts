/**
 * `npm run bench:memory`: resident memory of the server, each engine in its own `node` process (no npm
 * wrapper), on the synthetic full-size BGE-M3 files. For each: RSS at rest (after one short request),
 * where it is (by mapping, and V8's heap from /metrics), then the peak RSS (VmHWM, reset before each) of
 * each workload. Prints markdown; numbers, not pass/fail.
 *
 *   npm run bench:memory -- [--quants q8_0,q4_k_m] [--engines native,node-llama-cpp,llama-server]
 *                           [--workloads short,concurrent,long,colbert,colbert-base64] [--entry dist/src/main.js]
 *                           [--set MAX_BATCH_TOKENS=512,...] [--llama-server /path/to/llama-server]
 * short: 40 sequential 20-token inputs; concurrent: 16 requests of one ~500-token input at once;
 * long: one 8,190-token input; colbert, colbert-base64: one request for the dense and ColBERT vectors of 8 inputs of
 * 2,862 ids (22,912 tokens, 94 MB of vectors; the server is then started with BGE-M3-shaped random heads, and
 * needs `--set MAX_OUTPUT_BYTES=134217728` to admit it). --entry runs compiled JS instead of `--import tsx src/main.ts`.
 */
import path from "node:path";
import { parseScriptOptions } from "../cli-options.js";
import type { BgeM3FileType } from "../gguf/bge-m3.js";
import { repoRoot } from "../gguf/vocab.js";
import { FULL, testModel } from "../../test/helpers/models.js";
import { resolveThreads } from "../../src/engine/threads.js";
import { cpuClass, describeCpu } from "./cpu-class.js";
import { startLlamaServer, startServerProcess, TSX_ENTRY, type ServerProcess } from "./server-process.js";
import { rssBreakdown } from "./smaps.js";
import { benchHeads, colbertRequest } from "./heads.js";
import { embedTokens, latencies, syntheticTokens } from "./workloads.js";

const values = parseScriptOptions(import.meta.url, {
  quants: { type: "string", default: "q8_0,q4_k_m" },
  engines: { type: "string", default: "native,node-llama-cpp" },
  workloads: { type: "string", default: "short,concurrent,long" },
  entry: { type: "string" },
  set: { type: "string", default: "" },
  threads: { type: "string", default: "0" },
  "llama-server": { type: "string", default: "/tmp/llama-stock/build/bin/llama-server" },
});
const list = (text: string) => text.split(",").map((s) => s.trim()).filter(Boolean);
const extraEnv = Object.fromEntries(list(values.set!).map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]));
const nodeArgs = values.entry ? [values.entry] : TSX_ENTRY;
const MiB = 2 ** 20;
const mib = (bytes: number) => Math.round(bytes / MiB);
const log = (message: string) => process.stderr.write(`[memory ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

/** V8's share, from the server's own /metrics (prom-client's default metrics). */
async function v8Heap(server: ServerProcess): Promise<string> {
  const text = await fetch(`${server.url}/metrics`).then((r) => (r.ok ? r.text() : "")).catch(() => "");
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
  if (!text) return "n/a";
  return `heap total ${mib(read("nodejs_heap_size_total_bytes"))} MiB (used ${mib(read("nodejs_heap_size_used_bytes"))}), ` +
    `external ${mib(read("nodejs_external_memory_bytes"))} MiB`;
}

const workloads: Record<string, (url: string) => Promise<unknown>> = {
  short: (url) => latencies(url, { requests: 40, tokens: 20 }),
  concurrent: (url) => Promise.all(Array.from({ length: 16 }, (_, i) => embedTokens(url, [syntheticTokens(498, 500 + i)]))),
  long: (url) => embedTokens(url, [syntheticTokens(8188, 8190)]),
  colbert: (url) => colbertRequest(url, 8, 2862, "float"),
  "colbert-base64": (url) => colbertRequest(url, 8, 2862, "base64"),
};
// the heads only where a workload asks for their outputs (nothing is downloaded either way)
const headsEnv: Record<string, string> = {
  M3_HEADS: list(values.workloads!).some((name) => name.startsWith("colbert")) ? await benchHeads(path.join(repoRoot, ".cache", "bench")) : "none",
};

const cpu = cpuClass();
const rows: Record<string, string | number>[] = [];
const breakdowns: string[] = [];
for (const quant of list(values.quants!) as BgeM3FileType[]) {
  const modelPath = await testModel({ ...FULL, fileType: quant });
  for (const engine of list(values.engines!)) {
    log(`${quant} / ${engine}: starting`);
    const server = engine === "llama-server"
      ? await startLlamaServer(values["llama-server"]!, modelPath, resolveThreads(Number(values.threads)))
      : await startServerProcess(
        { EMBEDDING_MODEL: modelPath, ENGINE: engine, THREADS: values.threads!, REQUEST_TIMEOUT_MS: "0", ...headsEnv, ...extraEnv },
        600_000,
        nodeArgs,
      );
    const row: Record<string, string | number> = { model: quant, engine };
    try {
      await embedTokens(server.url, [syntheticTokens(20, 1)]);
      await new Promise((r) => setTimeout(r, 1000));
      row["at rest (MiB)"] = mib(server.rssBytes());
      const parts = rssBreakdown(server.pid);
      const heap = engine === "llama-server" ? "" : `; V8: ${await v8Heap(server)}`;
      breakdowns.push(
        `- ${quant} / ${engine} at rest: ` +
          Object.entries(parts.groups).sort((a, b) => b[1] - a[1]).map(([name, kb]) => `${name} ${Math.round(kb / 1024)}`).join(", ") +
          ` MiB; largest libraries: ${parts.libraries.slice(0, 4).map(([name, kb]) => `${name} ${Math.round(kb / 1024)}`).join(", ")}${heap}`,
      );
      for (const name of list(values.workloads!)) {
        server.resetPeak();
        const started = performance.now();
        await workloads[name](server.url);
        row[`${name}: peak (MiB)`] = mib(server.peakRssBytes());
        row[`${name}: s`] = +((performance.now() - started) / 1000).toFixed(1);
        log(`${quant} / ${engine}: ${name} peak ${row[`${name}: peak (MiB)`]} MiB in ${row[`${name}: s`]} s`);
      }
      row["after (MiB)"] = mib(server.rssBytes());
    } catch (error) {
      row.error = (error as Error).message.slice(0, 200);
      log(`${quant} / ${engine}: ${row.error}`);
    } finally {
      await server.stop();
    }
    rows.push(row);
  }
}

const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
process.stdout.write(
  [
    describeCpu(cpu),
    `Server: node ${nodeArgs.join(" ")}${list(values.set!).length ? `, ${values.set}` : ""}`,
    "",
    `| ${columns.join(" | ")} |`,
    `| ${columns.map(() => "---").join(" | ")} |`,
    ...rows.map((row) => `| ${columns.map((c) => row[c] ?? "").join(" | ")} |`),
    "",
    ...breakdowns,
    "",
  ].join("\n"),
);
