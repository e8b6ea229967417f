import { stat } from "node:fs/promises";
import type { FastifyBaseLogger } from "fastify";
import type { Config } from "../config/load.js";
import { EmbeddingPipeline } from "../embedding/pipeline.js";
import { createEmbedder } from "../engine/create.js";
import { BatchScheduler, type SchedulerObserver } from "../engine/scheduler.js";
import type { Embedder } from "../engine/types.js";
import { prepareModel } from "../model/prepare.js";
import { poolingName } from "../model/validate.js";
import type { ReadyService } from "./state.js";

export interface LoadedService extends ReadyService {
  readonly embedder: Embedder;
  readonly scheduler: BatchScheduler;
}

/** Finds (downloading if needed), checks and loads the model, and puts a scheduler in front of it. */
export async function loadService(
  config: Config,
  log: FastifyBaseLogger,
  observer: SchedulerObserver = {},
): Promise<LoadedService> {
  const started = performance.now();
  const { path: modelPath, facts } = await prepareModel(config.embeddingModel, config.modelDir, (percent, progress) =>
    log.info(progress, `downloading model: ${percent}%`),
  );
  log.info(
    { modelPath, layers: facts.layers, dimensions: facts.embeddingLength, context: facts.contextLength, pooling: poolingName(facts.poolingType) },
    "model file checked",
  );
  const embedder = await createEmbedder({
    engine: config.engine,
    modelPath,
    device: config.device,
    threads: config.threads,
    contextSize: Math.min(config.contextSize, facts.contextLength),
    maxBatchTokens: config.maxBatchTokens,
    maxBatchSequences: config.maxBatchSequences,
    // llama.cpp writes plain text to stderr: only when asked for, next to pino's debug/trace lines
    llamaLogs: config.logLevel === "trace" ? "all" : config.logLevel === "debug" ? "warnings" : "none",
    onFallback: (reason) => log.warn(reason),
  });
  const scheduler = new BatchScheduler(
    embedder,
    {
      maxBatchTokens: config.maxBatchTokens,
      maxBatchSequences: config.maxBatchSequences,
      maxQueueInputs: config.maxQueue,
      maxQueueTokens: config.maxQueueTokens,
    },
    observer,
  );
  const pipeline = new EmbeddingPipeline(embedder, scheduler, {
    requestTimeoutMs: config.requestTimeoutMs,
    maxRequestTokens: config.maxRequestTokens,
  });
  const createdAt = Math.floor((await stat(modelPath)).mtimeMs / 1000);
  log.info(
    { engine: embedder.engine, device: embedder.device, seconds: +((performance.now() - started) / 1000).toFixed(2) },
    "model loaded",
  );
  return { pipeline, embedder, scheduler, engine: embedder.engine, device: embedder.device, createdAt };
}
