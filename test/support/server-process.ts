import { spawn } from "node:child_process";

/** The real server process (`npm start`'s command line), its output as it comes, and its end. */
export interface ServerRun {
  /** stdout (pino's JSON lines) and stderr (the one-line start-up error) so far, interleaved. */
  output(): string;
  /** stderr alone. */
  errors(): string;
  /** Resolves with the first match in the output; rejects when the process exits first or after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** The port it listens on, from its "listening at" line. */
  port(): Promise<number>;
  readonly exited: Promise<number | null>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** Variables of the test's own environment that would change where downloads go. */
const NETWORK_VARIABLES = /^(https?_proxy|no_proxy|all_proxy|hf_.*|node_extra_ca_certs|download_.*)$/i;

/**
 * Starts `node --import tsx src/main.ts` (or another `script`: scripts/fetch-model.ts) on loopback with
 * an ephemeral port, LOG_LEVEL=info, no heads and none of the caller's proxy or hub variables unless
 * `env` sets them.
 */
export function startServer(env: Record<string, string>, script = "src/main.ts"): ServerRun {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !NETWORK_VARIABLES.test(name)));
  const child = spawn(process.execPath, ["--import", "tsx", script], {
    env: { ...inherited, PORT: "0", HOST: "127.0.0.1", DEVICE: "cpu", M3_HEADS: "none", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let errors = "";
  const listeners = new Set<() => void>();
  const changed = () => listeners.forEach((listener) => listener());
  child.stdout.on("data", (chunk) => ((output += chunk), changed()));
  child.stderr.on("data", (chunk) => ((output += chunk), (errors += chunk), changed()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  let done = false;
  void exited.then(() => ((done = true), changed()));
  const waitFor = (pattern: RegExp, timeoutMs = 120_000) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`no ${pattern} within ${timeoutMs} ms:\n${output.slice(-3000)}`)), timeoutMs);
      const check = () => {
        const match = pattern.exec(output);
        if (match) finish(undefined, match);
        else if (done) finish(new Error(`exited before ${pattern}:\n${output.slice(-3000)}`));
      };
      function finish(error?: Error, match?: RegExpExecArray) {
        clearTimeout(timer);
        listeners.delete(check);
        if (error) reject(error);
        else resolve(match as RegExpExecArray);
      }
      listeners.add(check);
      check();
    });
  return {
    output: () => output,
    errors: () => errors,
    waitFor,
    port: async () => Number((await waitFor(/listening at http:\/\/127\.0\.0\.1:(\d+)/))[1]),
    exited,
    stop: () => {
      child.kill("SIGTERM");
      return exited;
    },
  };
}
