import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { PipelineObserver } from "../embedding/pipeline.js";
import type { BatchStats, SchedulerObserver } from "../engine/types.js";

/** Everything /metrics reports, in one registry per server (tests build several servers per process). */
export class Metrics implements SchedulerObserver, PipelineObserver {
  readonly registry = new Registry();

  private readonly requests = new Counter({
    name: "http_requests_total",
    help: "HTTP requests by route, method and status.",
    labelNames: ["route", "method", "status"] as const,
    registers: [this.registry],
  });
  private readonly requestSeconds = new Histogram({
    name: "http_request_duration_seconds",
    help: "HTTP request latency.",
    labelNames: ["route"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  private readonly inputTokens = new Counter({
    name: "embedding_input_tokens_total",
    help: "Tokens embedded, <s> and </s> included.",
    registers: [this.registry],
  });
  private readonly inputs = new Counter({
    name: "embedding_inputs_total",
    help: "Inputs embedded.",
    registers: [this.registry],
  });
  private readonly batchSequences = new Histogram({
    name: "embedding_batch_sequences",
    help: "Inputs per engine batch.",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });
  private readonly batchTokens = new Histogram({
    name: "embedding_batch_tokens",
    help: "Tokens per engine batch.",
    buckets: [16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384],
    registers: [this.registry],
  });
  private readonly batchSeconds = new Histogram({
    name: "embedding_batch_duration_seconds",
    help: "Engine time per batch.",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  private readonly queueDepth = new Gauge({
    name: "embedding_queue_inputs",
    help: "Inputs waiting for the engine.",
    registers: [this.registry],
  });
  private readonly outputBytes = new Gauge({
    name: "embedding_output_bytes",
    help: "Bytes of outputs (vectors, sparse weights, ColBERT vectors) held for answers being computed or written (at most MAX_OUTPUT_BYTES).",
    registers: [this.registry],
  });
  private readonly cancelledInputs = new Counter({
    name: "embedding_inputs_cancelled_total",
    help: "Inputs whose request went away (client gone, timed out): dropped while queued, or stopped in a running batch.",
    labelNames: ["stage"] as const,
    registers: [this.registry],
  });
  private readonly nonFiniteVectors = new Counter({
    name: "embedding_non_finite_vectors_total",
    help: "Inputs whose vector came back with NaN or Infinity (answered 500, never sent).",
    registers: [this.registry],
  });
  private readonly modelLoadSeconds = new Gauge({
    name: "model_load_duration_seconds",
    help: "Time from start to the model being ready (download included).",
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  onBatch(stats: BatchStats): void {
    this.batchSequences.observe(stats.sequences);
    this.batchTokens.observe(stats.tokens);
    this.batchSeconds.observe(stats.seconds);
    this.inputs.inc(stats.sequences);
    this.inputTokens.inc(stats.tokens);
  }

  onCancelled(inputs: number, stage: "queued" | "running"): void {
    this.cancelledInputs.inc({ stage }, inputs);
  }

  onNonFinite(): void {
    this.nonFiniteVectors.inc();
  }

  onQueueDepth(inputs: number): void {
    this.queueDepth.set(inputs);
  }

  onOutputBytes(bytes: number): void {
    this.outputBytes.set(bytes);
  }

  observeRequest(route: string, method: string, status: number, seconds: number): void {
    this.requests.inc({ route, method, status: String(status) });
    this.requestSeconds.observe({ route }, seconds);
  }

  observeModelLoad(seconds: number): void {
    this.modelLoadSeconds.set(seconds);
  }
}
