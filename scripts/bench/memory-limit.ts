/**
 * `npm run bench:memory-limit`: the whole server inside a memory cgroup limited to 1 GiB (scripts/bench/cgroup.ts;
 * the same accounting as `podman run --memory=1g`), with BGE-M3-shaped random heads and the default settings,
 * through: start, one 8,190-token input, the largest ColBERT request the defaults admit (full-length inputs
 * filling MAX_OUTPUT_BYTES, float JSON), the largest rerank they admit (MAX_RERANK_DOCUMENTS documents filling
 * MAX_REQUEST_TOKENS, hybrid), 16 concurrent ~500-token requests, SIGTERM. Passes when every request succeeds,
 * the server exits 0 and the group saw no OOM kill. Needs write access to the cgroup filesystem (root here).
 *
 *   npm run bench:memory-limit -- [--quant q4_k_m] [--limit-mib 1024] [--engine native] [--entry dist/src/main.js]
 *
 * The model file's page cache is dropped first (`dd iflag=nocache`), so that loading charges it to the group
 * as it would in a fresh container; pages another process keeps mapped cannot be dropped (then the group is
 * charged less than a fresh container would be: the report says how much of the file was still cached).
 */
import { spawn, spawnSync } from "node:child_process";
import { parseScriptOptions } from "../cli-options.js";
import type { BgeM3FileType } from "../gguf/bge-m3.js";
import path from "node:path";
import { FULL, testModel } from "../../test/helpers/models.js";
import { outputBytes } from "../../src/embedding/output-budget.js";
import { configSchema } from "../../src/config/schema.js";
import { repoRoot } from "../gguf/vocab.js";
import { createMemoryCgroup } from "./cgroup.js";
import { cpuClass, describeCpu } from "./cpu-class.js";
import { benchHeads, colbertRequest, rerankRequest } from "./heads.js";
import { spawnServer, TSX_ENTRY } from "./server-process.js";
import { statusBytes } from "./smaps.js";
import { embedTokens, syntheticTokens } from "./workloads.js";

const values = parseScriptOptions(import.meta.url, {
  quant: { type: "string", default: "q4_k_m" },
  "limit-mib": { type: "string", default: "1024" },
  engine: { type: "string", default: "native" },
  threads: { type: "string", default: "0" },
  entry: { type: "string" },
});
const MiB = 2 ** 20;
const mib = (bytes: number | undefined) => (bytes === undefined ? "n/a" : `${Math.round(bytes / MiB)} MiB`);
const log = (message: string) => process.stderr.write(`[limit ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

const modelPath = await testModel({ ...FULL, fileType: values.quant as BgeM3FileType });
const headsDir = await benchHeads(path.join(repoRoot, ".cache", "bench"));
const defaults = configSchema.properties;
// the largest requests the default settings admit: full-length inputs with dense and 1024-wide ColBERT vectors
// while they fit MAX_OUTPUT_BYTES; documents of a length that fills MAX_REQUEST_TOKENS (~5% below: the texts'
// token counts are approximate)
const fullInput = defaults.contextSize.default - 2;
const colbertInputs = Math.floor(defaults.maxOutputBytes.default / outputBytes(fullInput + 2, { denseFloats: 1024, sparse: false, colbertFloats: 1024 }));
const rerankDocuments = defaults.maxRerankDocuments.default;
const rerankTokens = Math.floor((defaults.maxRequestTokens.default * 0.95) / rerankDocuments) - 2;
const dropped = spawnSync("dd", [`if=${modelPath}`, "iflag=nocache", "count=0", "status=none"]);
if (dropped.status !== 0) log(`could not drop the model's page cache: ${dropped.stderr}`);
const cachedKb = spawnSync("fincore", ["--bytes", "--noheadings", "--output", "RES", modelPath], { encoding: "utf8" });
const stillCached = cachedKb.status === 0 ? `${mib(Number(cachedKb.stdout.trim()))} of the model file still cached before start` : "";

const limitBytes = Number(values["limit-mib"]) * MiB;
const group = createMemoryCgroup(`bge-m3-limit-${process.pid}`, limitBytes);
const nodeArgs = values.entry ? [values.entry] : TSX_ENTRY;
const lines: string[] = [describeCpu(cpuClass()), `cgroup v${group.version} ${group.dir}, limit ${mib(limitBytes)}; ${stillCached}`];
let failed = false;
const step = async (name: string, run: () => Promise<unknown>, pid: number) => {
  const started = performance.now();
  try {
    const detail = await run();
    const what = typeof detail === "string" ? ` (${detail})` : "";
    lines.push(`- ${name}: ok${what} in ${((performance.now() - started) / 1000).toFixed(1)} s; VmHWM so far ${mib(statusBytes(pid, "VmHWM"))}, group peak ${mib(group.peakBytes())}`);
  } catch (error) {
    failed = true;
    lines.push(`- ${name}: FAILED (${(error as Error).message.slice(0, 200)})`);
  }
  log(lines.at(-1)!);
};

try {
  // the shell joins the group, then becomes the server (exec): the server's pid is the shell's
  const server = await spawnServer((port) => spawn("sh", ["-c", `echo $$ > ${group.procsFile} && exec "$0" "$@"`, process.execPath, ...nodeArgs], {
    env: {
      ...process.env, HOST: "127.0.0.1", PORT: String(port), LOG_LEVEL: "warn", DEVICE: "cpu",
      EMBEDDING_MODEL: modelPath, ENGINE: values.engine!, THREADS: values.threads!, REQUEST_TIMEOUT_MS: "0", M3_HEADS: headsDir,
    },
    stdio: ["ignore", "ignore", "pipe"],
  }), 600_000);
  lines.push(`- start: healthy in ${server.secondsToHealthy.toFixed(1)} s; RSS ${mib(server.rssBytes())}, group peak ${mib(group.peakBytes())}`);
  await embedTokens(server.url, [syntheticTokens(20, 1)]);
  await step("one 8,190-token input", () => embedTokens(server.url, [syntheticTokens(8188, 8190)]), server.pid);
  await step(
    `the largest ColBERT request: ${colbertInputs} x ${fullInput + 2} tokens, float`,
    async () => `${Math.round((await colbertRequest(server.url, colbertInputs, fullInput, "float")) / MiB)} MiB of JSON`,
    server.pid,
  );
  await step(
    `the largest rerank: ${rerankDocuments} documents of ~${rerankTokens} tokens, hybrid`,
    async () => `${await rerankRequest(server.url, rerankDocuments, rerankTokens)} tokens`,
    server.pid,
  );
  await step("16 concurrent ~500-token requests", () => Promise.all(Array.from({ length: 16 }, (_, i) => embedTokens(server.url, [syntheticTokens(498, 500 + i)]))), server.pid);
  const exit = await server.stop();
  const clean = exit.code === 0 && exit.signal === null;
  if (!clean) failed = true;
  lines.push(`- SIGTERM: exit ${exit.code ?? exit.signal}${clean ? " (clean)" : ""}`);
} catch (error) {
  failed = true;
  lines.push(`- server: FAILED (${(error as Error).message.slice(0, 300)})`);
} finally {
  const kills = group.oomKills();
  if (kills > 0) failed = true;
  lines.push(`OOM kills in the group: ${kills}; group peak (anonymous + page cache charged): ${mib(group.peakBytes())}`);
  lines.push(failed ? "RESULT: FAILED" : `RESULT: passed within ${mib(limitBytes)}`);
  group.remove();
}
process.stdout.write(`${lines.join("\n")}\n`);
process.exitCode = failed ? 1 : 0;
