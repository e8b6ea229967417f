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
  // no heads unless a test asks: nothing is downloaded in tests
  const config = loadConfig({ EMBEDDING_MODEL: modelPath, DEVICE: "cpu", ENGINE: TEST_ENGINE, LOG_LEVEL: "silent", M3_HEADS: "none", ...env }, []);
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

export { cosine } from "../helpers/reference.js";

export function decodeBase64Vector(text: string): Float32Array {
  const bytes = Buffer.from(text, "base64");
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}
