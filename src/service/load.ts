import { stat } from "node:fs/promises";
import type { FastifyBaseLogger } from "fastify";
import type { Config } from "../config/load.js";
import { EmbeddingPipeline } from "../embedding/pipeline.js";
import { createEmbedder } from "../engine/create.js";
import { BatchScheduler, type SchedulerObserver } from "../engine/scheduler.js";
import type { Embedder } from "../engine/types.js";
import { prepareHeads } from "../model/heads/prepare.js";
import type { HeadsState } from "../model/heads/types.js";
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
  const { path: modelPath, facts } = await prepareModel(config.embeddingModel, {
    modelDir: config.modelDir,
    hub: config.hub,
    report: (percent, progress) => log.info(progress, `downloading model: ${percent}%`),
  });
  log.info(
    { modelPath, layers: facts.layers, dimensions: facts.embeddingLength, context: facts.contextLength, pooling: poolingName(facts.poolingType) },
    "model file checked",
  );
  const headsState = await loadHeads(config, facts.embeddingLength, log);
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
    heads: headsState.available ? headsState.heads : undefined,
    attentionPrecision: config.attentionPrecision,
  });
  const asked = config.attentionPrecision;
  if ((asked === "int16" || asked === "bf16") && embedder.attentionPrecision !== asked) {
    const needs = asked === "int16" ? "a CPU build with AVX2 and no AVX-512" : "a CPU build with AVX512-BF16";
    log.warn(
      { engine: embedder.engine, device: embedder.device },
      `ATTENTION_PRECISION=${asked} is not available here (it needs the native engine on ${needs}): attention runs in f32`,
    );
  }
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
    headsUnavailable: headsState.available ? undefined : headsState.reason,
  });
  const createdAt = Math.floor((await stat(modelPath)).mtimeMs / 1000);
  log.info(
    {
      engine: embedder.engine,
      device: embedder.device,
      outputs: pipeline.headsUnavailable ? "dense" : "dense, sparse, colbert",
      attention: embedder.attentionPrecision ?? "engine default",
      attentionSetting: config.attentionPrecision,
      seconds: +((performance.now() - started) / 1000).toFixed(2),
    },
    "model loaded",
  );
  return {
    pipeline, embedder, scheduler, engine: embedder.engine, device: embedder.device, attention: embedder.attentionPrecision, createdAt,
  };
}

/**
 * BGE-M3's sparse and ColBERT heads (M3_HEADS), fetched like the model. Without them the server still
 * serves dense vectors: the reason is logged once and given to requests that ask for the other outputs.
 */
async function loadHeads(config: Config, hiddenSize: number, log: FastifyBaseLogger): Promise<HeadsState> {
  if (config.engine === "node-llama-cpp") return { available: false, reason: "the node-llama-cpp engine runs no heads" };
  const state = await prepareHeads(config.m3Heads, {
    modelDir: config.modelDir,
    hub: config.hub,
    expectedHiddenSize: hiddenSize,
    onProgress: (progress) => log.info(progress, "downloading the sparse and ColBERT heads"),
  });
  if (state.available) log.info({ source: state.source }, "sparse and ColBERT heads loaded");
  else log.warn(`sparse and ColBERT outputs unavailable: ${state.reason}`);
  return state;
}
