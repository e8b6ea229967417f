import { stat } from "node:fs/promises";
import type { FastifyBaseLogger } from "fastify";
import type { Config } from "../config/load.js";
import { OutputBudget } from "../embedding/output-budget.js";
import { EmbeddingPipeline, type PipelineObserver } from "../embedding/pipeline.js";
import { createEmbedder } from "../engine/create.js";
import { BatchScheduler } from "../engine/scheduler.js";
import type { Embedder, SchedulerObserver } from "../engine/types.js";
import type { DownloadEvent } from "../model/download/download.js";
import { percentOf } from "../model/download/messages.js";
import { prepareHeads } from "../model/heads/prepare.js";
import type { HeadsState } from "../model/heads/types.js";
import { prepareModel } from "../model/prepare.js";
import { downloadLines } from "../model/progress.js";
import { poolingName } from "../model/validate.js";
import type { LoadingStep, ReadyService } from "./state.js";

export interface LoadedService extends ReadyService {
  readonly embedder: Embedder;
  readonly scheduler: BatchScheduler;
}

/** Download events as log lines (retries as warnings) and as /health's loading step. */
function downloadObserver(log: FastifyBaseLogger, onStep: (step: LoadingStep) => void): (event: DownloadEvent) => void {
  const lines = downloadLines((event, line) => (event.type === "retry" ? log.warn(line) : log.info(line)));
  return (event) => {
    lines(event);
    if (event.type === "done") return;
    const step = `downloading the ${event.label}`;
    const percent = event.type === "start" ? 0 : Number(percentOf(event)) || 0;
    if (event.type !== "retry") return onStep({ step, percent });
    onStep({ step, percent, detail: `attempt ${event.attempt} failed (${event.reason}); next in ${(event.delayMs / 1000).toFixed(1)} s` });
  };
}

/**
 * Finds (downloading if needed), checks and loads the model, and puts a scheduler in front of it;
 * `onStep` hears what it is doing (for /health).
 */
export async function loadService(
  config: Config,
  log: FastifyBaseLogger,
  observer: SchedulerObserver & PipelineObserver = {},
  onStep: (step: LoadingStep) => void = () => undefined,
): Promise<LoadedService> {
  const started = performance.now();
  onStep({ step: "finding the model file" });
  const onEvent = downloadObserver(log, onStep);
  const { path: modelPath, facts } = await prepareModel(config.embeddingModel, {
    modelDir: config.modelDir,
    hub: config.hub,
    download: config.download,
    onEvent,
  });
  log.info(
    { modelPath, layers: facts.layers, dimensions: facts.embeddingLength, context: facts.contextLength, pooling: poolingName(facts.poolingType) },
    "model file checked",
  );
  onStep({ step: "reading the sparse and ColBERT heads" });
  const headsState = await loadHeads(config, facts.embeddingLength, log, onEvent);
  onStep({ step: "loading the model into memory" });
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
    outputBudget: new OutputBudget(config.maxOutputBytes, (bytes) => observer.onOutputBytes?.(bytes)),
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
async function loadHeads(config: Config, hiddenSize: number, log: FastifyBaseLogger, onEvent: (event: DownloadEvent) => void): Promise<HeadsState> {
  if (config.engine === "node-llama-cpp") return { available: false, reason: "the node-llama-cpp engine runs no heads" };
  const state = await prepareHeads(config.m3Heads, {
    modelDir: config.modelDir,
    hub: config.hub,
    expectedHiddenSize: hiddenSize,
    download: config.download,
    onEvent,
  });
  if (state.available) log.info({ source: state.source }, "sparse and ColBERT heads loaded");
  else log.warn(`sparse and ColBERT outputs unavailable: ${state.reason}`);
  return state;
}
