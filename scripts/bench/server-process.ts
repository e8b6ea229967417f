import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";

/** A server started as users start it (`src/main.ts`), in its own process so its memory can be read. */
export interface ServerProcess {
  readonly url: string;
  readonly pid: number;
  /** Seconds from spawn to /health answering 200. */
  readonly secondsToHealthy: number;
  rssBytes(): number;
  /** Peak RSS since start or since the last resetPeak(). */
  peakRssBytes(): number;
  resetPeak(): void;
  /** SIGTERM, then how the process ended. */
  stop(): Promise<ServerExit>;
}

export interface ServerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

function statusField(pid: number, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) * 1024 : 0;
}

/** A port nobody listens on right now (the server binds it a moment later). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** How the server runs: TypeScript through tsx (what `npm start` does), or another entry (compiled JS). */
export const TSX_ENTRY: readonly string[] = ["--import", "tsx", "src/main.ts"];

export async function startServerProcess(
  env: Record<string, string>,
  timeoutMs = 600_000,
  nodeArgs: readonly string[] = TSX_ENTRY,
): Promise<ServerProcess> {
  return startServerCommand(process.execPath, nodeArgs, env, timeoutMs);
}

/** The same with another command line: scripts/pack-check.ts starts the installed `bge-m3-server`. */
export async function startServerCommand(
  command: string, args: readonly string[], env: Record<string, string>, timeoutMs = 600_000,
): Promise<ServerProcess> {
  return spawnServer((port) => spawn(command, [...args], {
    env: { ...process.env, HOST: "127.0.0.1", PORT: String(port), LOG_LEVEL: "warn", DEVICE: "cpu", ...env },
    stdio: ["ignore", "ignore", "pipe"],
  }), timeoutMs);
}

/**
 * llama.cpp's own server on the same file, for a side-by-side run: embeddings with CLS pooling, flash
 * attention, 4 slots sharing the 8,192-token context (the 4 requests in flight of the throughput workload).
 */
export async function startLlamaServer(binary: string, modelPath: string, threads: number, timeoutMs = 600_000): Promise<ServerProcess> {
  return spawnServer((port) => spawn(binary, [
    "-m", modelPath, "--embeddings", "--pooling", "cls", "-c", "8192", "-np", "4", "-b", "2048", "-ub", "2048",
    "-fa", "on", "-t", String(threads), "--host", "127.0.0.1", "--port", String(port),
  ], { stdio: ["ignore", "ignore", "pipe"] }), timeoutMs);
}

export async function spawnServer(start: (port: number) => ChildProcess, timeoutMs: number): Promise<ServerProcess> {
  const started = performance.now();
  const port = await freePort();
  const child = start(port);
  let log = "";
  child.stderr!.on("data", (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    const response = await fetch(`${url}/health`).catch(() => undefined);
    if (response?.status === 200) break;
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}: ${log}`);
    if (performance.now() - started > timeoutMs) throw new Error(`server not healthy after ${timeoutMs} ms: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const pid = child.pid!;
  return {
    url,
    pid,
    secondsToHealthy: (performance.now() - started) / 1000,
    rssBytes: () => statusField(pid, "VmRSS"),
    peakRssBytes: () => statusField(pid, "VmHWM"),
    // Writing 5 to clear_refs resets the kernel's peak-RSS mark (VmHWM) for the process.
    resetPeak: () => writeFileSync(`/proc/${pid}/clear_refs`, "5"),
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve({ code: child.exitCode, signal: child.signalCode });
        child.once("exit", (code, signal) => resolve({ code, signal }));
        child.kill("SIGTERM");
      }),
  };
}
