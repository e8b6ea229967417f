// Server processes for tests, benchmarks and scripts/pack-check.ts, the one place that spawns them: our
// server as users start it (src/main.ts, compiled JS or an installed command), scripts/fetch-model.ts,
// and llama.cpp's own server for side-by-side runs. It keeps what the process prints, finds its port,
// waits for a log line or for /health, reads its memory from /proc and stops it.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";

export interface ServerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A spawned server, from its first byte of output to its exit. */
export interface LaunchedServer {
  readonly pid: number;
  /** stdout (pino's JSON lines) and stderr (a start-up error's one line) so far, interleaved. */
  output(): string;
  /** stderr alone. */
  errors(): string;
  /** The first match in the output so far or to come; rejects once the process exits first, or after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** `http://host:port`: the PORT it was given, or with PORT=0 the one its "listening at" log line names. */
  address(timeoutMs?: number): Promise<string>;
  readonly exited: Promise<ServerExit>;
  /** Sends `signal` (SIGTERM by default) unless it has exited, then how it ended. */
  stop(signal?: NodeJS.Signals): Promise<ServerExit>;
  rssBytes(): number;
  /** Peak RSS since start or since the last resetPeak(). */
  peakRssBytes(): number;
  resetPeak(): void;
}

/** A server that answered /health with 200. */
export interface ServerProcess extends LaunchedServer {
  readonly url: string;
  /** Seconds from spawn to /health answering 200. */
  readonly secondsToHealthy: number;
}

/** How our server runs: TypeScript through tsx (what `npm start` does); compiled JS is another entry. */
export const TSX_ENTRY: readonly string[] = ["--import", "tsx", "src/main.ts"];

/** Variables of the caller's environment that would change where a download goes (see `isolated`). */
const NETWORK_VARIABLES = /^(https?_proxy|no_proxy|all_proxy|hf_.*|node_extra_ca_certs|download_.*)$/i;

export interface LaunchOptions {
  /** Node's arguments: TSX_ENTRY by default; ["--import", "tsx", "scripts/fetch-model.ts"] runs the fetcher. */
  readonly nodeArgs?: readonly string[];
  /** Drop the caller's proxy, hub and download variables (tests: nothing reaches past loopback unless `env` says so). */
  readonly isolated?: boolean;
}

/**
 * Starts our server on 127.0.0.1 with DEVICE=cpu and `env` over the caller's environment, and returns at
 * once (untilHealthy waits). PORT defaults to 0: the server picks one and its "listening at" log line
 * (LOG_LEVEL info or lower) names it.
 */
export function launchServer(env: Record<string, string>, options: LaunchOptions = {}): LaunchedServer {
  const inherited = options.isolated
    ? Object.fromEntries(Object.entries(process.env).filter(([name]) => !NETWORK_VARIABLES.test(name)))
    : process.env;
  const port = env.PORT ?? "0";
  const child = spawn(process.execPath, [...(options.nodeArgs ?? TSX_ENTRY)], {
    env: { ...inherited, HOST: "127.0.0.1", DEVICE: "cpu", ...env, PORT: port },
    stdio: ["ignore", "pipe", "pipe"],
  });
  return watch(child, port === "0" ? undefined : `http://127.0.0.1:${port}`);
}

/**
 * What tests start: LOG_LEVEL=info (the port and the steps are read from the log), no heads (nothing is
 * downloaded), no event-loop-delay 503s (a loaded machine starves the process for seconds) and none of
 * the caller's network variables, unless `env` sets them.
 */
export function launchTestServer(env: Record<string, string>, nodeArgs: readonly string[] = TSX_ENTRY): LaunchedServer {
  return launchServer({ LOG_LEVEL: "info", M3_HEADS: "none", MAX_EVENT_LOOP_DELAY_MS: "0", ...env }, { nodeArgs, isolated: true });
}

/** Resolves with `server` once /health answers 200; rejects if it exits first or after `timeoutMs`. */
export async function untilHealthy(server: LaunchedServer, timeoutMs = 600_000): Promise<ServerProcess> {
  const started = performance.now();
  const exited = server.exited.then(({ code, signal }) => {
    throw new Error(`server exited with ${code ?? signal} before /health answered: ${server.output().slice(-4000)}`);
  });
  exited.catch(() => undefined);
  const url = await Promise.race([server.address(timeoutMs), exited]);
  for (;;) {
    const response = await Promise.race([fetch(`${url}/health`).catch(() => undefined), exited]);
    if (response?.status === 200) break;
    if (performance.now() - started > timeoutMs) throw new Error(`server not healthy after ${timeoutMs} ms: ${server.output().slice(-4000)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { ...server, url, secondsToHealthy: (performance.now() - started) / 1000 };
}

/**
 * Our server, healthy, on a port chosen first: benchmarks measure it at LOG_LEVEL=warn (unless `env` says
 * otherwise), which prints no "listening at" line.
 */
export async function startServerProcess(
  env: Record<string, string>,
  timeoutMs = 600_000,
  nodeArgs: readonly string[] = TSX_ENTRY,
): Promise<ServerProcess> {
  const server = launchServer({ PORT: String(await freePort()), LOG_LEVEL: "warn", ...env }, { nodeArgs });
  return untilHealthy(server, timeoutMs);
}

/** The same with another command line: scripts/pack-check.ts starts the installed `bge-m3-server`. */
export async function startServerCommand(
  command: string, args: readonly string[], env: Record<string, string>, timeoutMs = 600_000,
): Promise<ServerProcess> {
  return spawnServer((port) => spawn(command, [...args], {
    env: { ...process.env, HOST: "127.0.0.1", PORT: String(port), LOG_LEVEL: "warn", DEVICE: "cpu", ...env },
    stdio: ["ignore", "pipe", "pipe"],
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
  ], { stdio: ["ignore", "pipe", "pipe"] }), timeoutMs);
}

/** Any server command on a free port of 127.0.0.1 that `start` passes it; healthy once /health answers 200. */
export async function spawnServer(start: (port: number) => ChildProcess, timeoutMs: number): Promise<ServerProcess> {
  const port = await freePort();
  return untilHealthy(watch(start(port), `http://127.0.0.1:${port}`), timeoutMs);
}

/** A port nobody listens on right now (the server binds it a moment later). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

function statusField(pid: number, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) * 1024 : 0;
}

/** Keeps the output of `child` (both pipes are read, so it never blocks on a full one) and follows its end. */
function watch(child: ChildProcess, url: string | undefined): LaunchedServer {
  let output = "";
  let errors = "";
  let ended: ServerExit | undefined;
  const listeners = new Set<() => void>();
  const changed = () => listeners.forEach((listener) => listener());
  child.stdout?.on("data", (chunk: Buffer) => ((output += chunk), changed()));
  child.stderr?.on("data", (chunk: Buffer) => ((output += chunk), (errors += chunk), changed()));
  // "close", not "exit": the pipes are drained by then, so a last error line is in errors()
  const exited = new Promise<ServerExit>((resolve) =>
    child.once("close", (code, signal) => {
      ended = { code, signal };
      resolve(ended);
      changed();
    }),
  );
  child.once("error", (error) => ((output += `\n${error.message}`), (errors += `\n${error.message}`)));
  const waitFor = (pattern: RegExp, timeoutMs = 120_000) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`no ${pattern} within ${timeoutMs} ms:\n${output.slice(-3000)}`)), timeoutMs);
      const check = () => {
        const match = pattern.exec(output);
        if (match) finish(undefined, match);
        else if (ended) finish(new Error(`exited (${ended.code ?? ended.signal}) before ${pattern}:\n${output.slice(-3000)}`));
      };
      function finish(error?: Error, match?: RegExpExecArray) {
        clearTimeout(timer);
        listeners.delete(check);
        if (error) reject(error);
        else resolve(match!);
      }
      listeners.add(check);
      check();
    });
  const pid = child.pid!;
  return {
    pid,
    output: () => output,
    errors: () => errors,
    waitFor,
    address: async (timeoutMs) => url ?? (await waitFor(/listening at (http:\/\/[\w.:[\]-]+)/, timeoutMs))[1],
    exited,
    stop: (signal = "SIGTERM") => {
      if (!ended) child.kill(signal);
      return exited;
    },
    rssBytes: () => statusField(pid, "VmRSS"),
    peakRssBytes: () => statusField(pid, "VmHWM"),
    // Writing 5 to clear_refs resets the kernel's peak-RSS mark (VmHWM) for the process.
    resetPeak: () => writeFileSync(`/proc/${pid}/clear_refs`, "5"),
  };
}
