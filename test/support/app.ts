import type { FastifyInstance } from "fastify";
import { loadConfig, type Config } from "../../src/config/load.js";
import { buildApp } from "../../src/http/app.js";
import { Metrics } from "../../src/metrics/metrics.js";
import { loadService, type LoadedService } from "../../src/service/load.js";
import { ServiceState } from "../../src/service/state.js";

export interface TestServer {
  readonly app: FastifyInstance;
  readonly config: Config;
  readonly state: ServiceState;
  readonly service: LoadedService;
  readonly metrics: Metrics;
  close(): Promise<void>;
}

/** The engine the suite runs on: ENGINE=native|node-llama-cpp|auto, as in production. */
export const TEST_ENGINE = process.env.ENGINE ?? "auto";

/**
 * The real server over a real GGUF file: config from env-style settings, the model loaded through
 * the production loading code, requests through fastify.inject (or a socket after listen()).
 */
export async function startTestServer(modelPath: string, env: Record<string, string> = {}): Promise<TestServer> {
  // no heads unless a test asks: nothing is downloaded in tests. No event-loop-delay 503s unless a test
  // asks (operate.test.ts): on a loaded machine this process's loop stalls for seconds (modules compiled
  // on first import, other test files' work), and a request would get 503 for it.
  const config = loadConfig(
    { EMBEDDING_MODEL: modelPath, DEVICE: "cpu", ENGINE: TEST_ENGINE, LOG_LEVEL: "silent", M3_HEADS: "none", MAX_EVENT_LOOP_DELAY_MS: "0", ...env },
    [],
  );
  const state = new ServiceState();
  const metrics = new Metrics();
  const app = await buildApp({ config, state, metrics, logger: false });
  const service = await loadService(config, app.log, metrics);
  state.markReady(service);
  return {
    app,
    config,
    state,
    service,
    metrics,
    async close() {
      await app.close();
      await service.scheduler.close();
      await service.embedder.dispose();
    },
  };
}

/** One batch the engine was handed: its sequences, and its vectors or the error it ended with. */
export interface EngineCall {
  readonly sequences: readonly Uint32Array[];
  readonly outcome: Promise<Float32Array | Error>;
}

/**
 * Resolves when the engine is next handed a batch (dense only): the moment a request's work is running,
 * observed where it happens rather than guessed with a sleep.
 */
export function nextEngineCall(server: TestServer): Promise<EngineCall> {
  const embedder = server.service.embedder;
  const original = embedder.embedBatch;
  return new Promise((resolve) => {
    embedder.embedBatch = (sequences, signal) => {
      embedder.embedBatch = original;
      const result = original.call(embedder, sequences, signal);
      resolve({ sequences, outcome: result.catch((error: Error) => error) });
      return result;
    };
  });
}

/** Holds every engine batch until `open()`; `entered` resolves once the first batch is held. */
export function holdEngine(server: TestServer): { open: () => void; entered: Promise<void> } {
  const embedder = server.service.embedder;
  const original = embedder.embedBatch.bind(embedder);
  let open!: () => void;
  let enter!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const entered = new Promise<void>((resolve) => (enter = resolve));
  embedder.embedBatch = async (sequences, signal) => {
    enter();
    await gate;
    return original(sequences, signal);
  };
  return { open, entered };
}

/** Polls `condition` until it holds; rejects after a deadline generous for any CPU, however loaded. */
export async function waitUntil(condition: () => boolean | Promise<boolean>, what: string, deadlineMs = 120_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`not within ${deadlineMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export { cosine } from "../helpers/reference.js";

export function decodeBase64Vector(text: string): Float32Array {
  const bytes = Buffer.from(text, "base64");
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}
