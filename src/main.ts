import type { FastifyInstance } from "fastify";
import { ConfigError, loadConfig, type Config } from "./config/load.js";
import { helpText } from "./config/help.js";
import { DeviceUnavailableError, EngineUnavailableError } from "./engine/errors.js";
import { buildApp } from "./http/app.js";
import { Metrics } from "./metrics/metrics.js";
import { ModelError } from "./model/errors.js";
import { loadService, type LoadedService } from "./service/load.js";
import { ServiceState } from "./service/state.js";

/** Failures a user fixes by changing a setting or a file: one line, no stack trace. */
const USER_ERRORS = [ConfigError, ModelError, DeviceUnavailableError, EngineUnavailableError];

function fail(error: unknown): never {
  const known = USER_ERRORS.some((type) => error instanceof type);
  const code = (error as NodeJS.ErrnoException).code;
  const message =
    code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL"
      ? `cannot listen: ${(error as Error).message}`
      : known
        ? (error as Error).message
        : `start-up failed: ${(error as Error)?.message ?? String(error)}`;
  process.stderr.write(`error: ${message}\n`);
  process.exit(1);
}

function handleSignals(app: FastifyInstance, state: ServiceState, config: Config, getService: () => LoadedService | undefined): void {
  const stop = async (signal: string) => {
    if (state.isStopping) return;
    state.markStopping();
    app.log.info({ signal }, "shutting down: finishing accepted requests");
    // 0: no deadline of ours (the orchestrator's own grace period still ends it)
    if (config.shutdownTimeoutMs > 0) {
      const deadline = setTimeout(() => {
        app.log.error(`shutdown took longer than ${config.shutdownTimeoutMs} ms; exiting`);
        process.exit(1);
      }, config.shutdownTimeoutMs);
      deadline.unref();
    }
    const service = getService();
    await app.close();
    if (service) {
      await service.scheduler.close();
      await service.embedder.dispose();
    }
    app.log.info("stopped");
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
}

async function main(): Promise<void> {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    process.stdout.write(`${helpText()}\n`);
    return;
  }
  const config = loadConfig();
  const state = new ServiceState();
  const metrics = new Metrics();
  const app = await buildApp({ config, state, metrics });
  await app.listen({ host: config.host, port: config.port });
  let service: LoadedService | undefined;
  handleSignals(app, state, config, () => service);
  try {
    service = await loadService(config, app.log, metrics, (step) => state.setLoadingStep(step));
  } catch (error) {
    await app.close().catch(() => undefined);
    throw error;
  }
  if (state.isStopping) return;
  state.markReady(service);
  metrics.observeModelLoad(process.uptime());
  app.log.info(`ready: POST ${config.routePrefix}/v1/embeddings`);
}

main().catch(fail);
