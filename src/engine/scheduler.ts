import type { Embedder } from "./types.js";

/**
 * The one owner of the queue between requests and the engine. All inputs of all requests wait here
 * in arrival order; a batch takes inputs from the front while they fit the token budget and the
 * sequence cap, so no input waits behind ones that arrived later. An input larger than the budget
 * runs alone. Admission is refused at once when the queue is full; inputs of requests that were
 * cancelled or timed out are dropped before they reach the engine.
 */

export interface SchedulerOptions {
  readonly maxBatchTokens: number;
  readonly maxBatchSequences: number;
  readonly maxQueueInputs: number;
  readonly maxQueueTokens: number;
}

export interface BatchStats {
  readonly sequences: number;
  readonly tokens: number;
  readonly seconds: number;
}

export interface SchedulerObserver {
  onBatch?(stats: BatchStats): void;
  onQueueDepth?(inputs: number): void;
}

export interface SubmitOptions {
  readonly signal?: AbortSignal;
  /** Fail with SchedulerTimeoutError if the vectors are not all back after this long; 0 = never. */
  readonly timeoutMs?: number;
}

export class QueueFullError extends Error {
  override name = "QueueFullError";
}
export class SchedulerClosedError extends Error {
  override name = "SchedulerClosedError";
}
export class SchedulerTimeoutError extends Error {
  override name = "SchedulerTimeoutError";
  constructor(readonly timeoutMs: number) {
    super(`request timed out after ${timeoutMs} ms`);
  }
}
export class RequestAbortedError extends Error {
  override name = "RequestAbortedError";
}

interface Job {
  readonly vectors: Float32Array[];
  pending: number;
  settled: boolean;
  finish(error?: Error): void;
}

interface Entry {
  readonly job: Job;
  readonly index: number;
  readonly tokens: Uint32Array;
}

export class BatchScheduler {
  private queue: Entry[] = [];
  private queuedTokens = 0;
  private running = false;
  private closed = false;
  private idle: Promise<void> = Promise.resolve();
  private markIdle: () => void = () => {};

  constructor(
    private readonly embedder: Embedder,
    private readonly options: SchedulerOptions,
    private readonly observer: SchedulerObserver = {},
  ) {}

  get queuedInputs(): number {
    return this.queue.length;
  }

  /** Embeds every sequence; the vectors come back in the order given. */
  submit(sequences: readonly Uint32Array[], submitOptions: SubmitOptions = {}): Promise<Float32Array[]> {
    if (this.closed) return Promise.reject(new SchedulerClosedError("the server is shutting down"));
    if (sequences.length === 0) return Promise.resolve([]);
    const tokens = sequences.reduce((sum, sequence) => sum + sequence.length, 0);
    if (
      this.queue.length + sequences.length > this.options.maxQueueInputs ||
      this.queuedTokens + tokens > this.options.maxQueueTokens
    ) {
      return Promise.reject(
        new QueueFullError(
          `the queue holds ${this.queue.length} inputs (${this.queuedTokens} tokens); ` +
            `this request's ${sequences.length} inputs (${tokens} tokens) do not fit`,
        ),
      );
    }
    if (submitOptions.signal?.aborted) return Promise.reject(new RequestAbortedError("the client went away"));

    return new Promise<Float32Array[]>((resolve, reject) => {
      const { signal, timeoutMs = 0 } = submitOptions;
      const onAbort = () => job.finish(new RequestAbortedError("the client went away"));
      const timer = timeoutMs > 0 ? setTimeout(() => job.finish(new SchedulerTimeoutError(timeoutMs)), timeoutMs) : undefined;
      const job: Job = {
        vectors: new Array<Float32Array>(sequences.length),
        pending: sequences.length,
        settled: false,
        finish: (error) => {
          if (job.settled) return;
          job.settled = true;
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          if (error) {
            this.dropQueued(job);
            reject(error);
          } else {
            resolve(job.vectors);
          }
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      sequences.forEach((tokens, index) => this.queue.push({ job, index, tokens }));
      this.queuedTokens += tokens;
      this.observer.onQueueDepth?.(this.queue.length);
      void this.pump();
    });
  }

  /** Refuses new work; resolves once everything accepted so far has finished. */
  async close(): Promise<void> {
    this.closed = true;
    await this.idle;
  }

  private dropQueued(job: Job): void {
    const kept = this.queue.filter((entry) => entry.job !== job);
    if (kept.length === this.queue.length) return;
    this.queue = kept;
    this.queuedTokens = kept.reduce((sum, entry) => sum + entry.tokens.length, 0);
    this.observer.onQueueDepth?.(this.queue.length);
  }

  private takeBatch(): Entry[] {
    const { maxBatchTokens, maxBatchSequences } = this.options;
    const limits = this.embedder.limits;
    const tokenBudget = Math.min(maxBatchTokens, limits.maxBatchTokens);
    const sequenceCap = Math.min(maxBatchSequences, limits.maxBatchSequences);
    const batch: Entry[] = [];
    let tokens = 0;
    for (const entry of this.queue) {
      const fits = batch.length === 0 || (tokens + entry.tokens.length <= tokenBudget && batch.length < sequenceCap);
      if (!fits) break;
      batch.push(entry);
      tokens += entry.tokens.length;
    }
    this.queue.splice(0, batch.length);
    this.queuedTokens -= tokens;
    this.observer.onQueueDepth?.(this.queue.length);
    return batch;
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.idle = new Promise((resolve) => (this.markIdle = resolve));
    try {
      while (this.queue.length > 0) await this.run(this.takeBatch());
    } finally {
      this.running = false;
      this.markIdle();
    }
  }

  private async run(batch: Entry[]): Promise<void> {
    const started = performance.now();
    const tokens = batch.reduce((sum, entry) => sum + entry.tokens.length, 0);
    let packed: Float32Array;
    try {
      packed = await this.embedder.embedBatch(batch.map((entry) => entry.tokens));
    } catch (error) {
      for (const entry of batch) entry.job.finish(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    this.observer.onBatch?.({ sequences: batch.length, tokens, seconds: (performance.now() - started) / 1000 });
    const dim = this.embedder.info.dimensions;
    batch.forEach((entry, row) => {
      const { job } = entry;
      if (job.settled) return;
      job.vectors[entry.index] = packed.subarray(row * dim, (row + 1) * dim);
      if (--job.pending === 0) job.finish();
    });
  }
}
