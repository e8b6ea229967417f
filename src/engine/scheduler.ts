import type { Embedder, HeadRequest, SchedulerObserver, SequenceOutputs } from "./types.js";

/**
 * The one owner of the queue between requests and the engine. A request first reserves room (admit,
 * from an upper bound of its tokens, before anything is tokenized), then submits its exact sequences
 * in place of the reservation. All inputs wait here in arrival order; a batch takes inputs from the
 * front while they fit the token budget and the sequence cap, so no input waits behind ones that
 * arrived later. An input larger than the budget runs alone. Admission is refused at once when the
 * queue is full (retry later) or when the request could never fit it (do not retry). Inputs of
 * requests that were cancelled or timed out are dropped before they reach the engine, and a running
 * batch whose every input is abandoned is stopped.
 */

export interface SchedulerOptions {
  readonly maxBatchTokens: number;
  readonly maxBatchSequences: number;
  readonly maxQueueInputs: number;
  readonly maxQueueTokens: number;
}

export interface SubmitOptions {
  readonly signal?: AbortSignal;
  /** The heads' outputs every sequence of the submission asks for (the engine must have heads). */
  readonly heads?: HeadRequest;
  /** Fail with SchedulerTimeoutError if the vectors are not all back after this long; 0 = never. */
  readonly timeoutMs?: number;
}

/** The queue is full right now: retry later. */
export class QueueFullError extends Error {
  override name = "QueueFullError";
}
/** The request alone exceeds a queue limit: it can never be queued, whatever the load. */
export class RequestTooLargeError extends Error {
  override name = "RequestTooLargeError";
  constructor(
    readonly limit: "inputs" | "tokens",
    readonly requested: number,
    readonly allowed: number,
  ) {
    super(`the request needs ${requested} queued ${limit}; the queue holds at most ${allowed}`);
  }
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
/** The engine returned NaN or Infinity (a vector or a head's output) for the input at `index` of the request. */
export class NonFiniteVectorError extends Error {
  override name = "NonFiniteVectorError";
  constructor(readonly index: number) {
    super(`the engine returned a non-finite vector for input ${index}`);
  }
}

/** Receives the outputs of the input at `index` of a submission, as soon as its batch has run. */
export type OutputSink = (index: number, outputs: SequenceOutputs) => void;

/** Queue room held for a request between admission and submission. */
export interface Admission {
  /**
   * Queues the exact sequences in place of the reservation. Each input's outputs go to `sink` in input
   * order (a submission's inputs are queued together and batches run in queue order), none kept here;
   * resolves once every input's outputs went there. A sink that throws fails the submission.
   */
  submit(sequences: readonly Uint32Array[], sink: OutputSink, options?: SubmitOptions): Promise<void>;
  /** Gives the room back unless submit() took it over; safe to call more than once. */
  release(): void;
}

interface Job {
  readonly sink: OutputSink;
  readonly heads: HeadRequest | undefined;
  pending: number;
  settled: boolean;
  finish(error?: Error): void;
}

interface Entry {
  readonly job: Job;
  readonly index: number;
  readonly tokens: Uint32Array;
}

const isFinite = (values: Float32Array | undefined): boolean => {
  if (values === undefined) return true;
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return false;
  return true;
};

const allFinite = (outputs: SequenceOutputs): boolean =>
  isFinite(outputs.pooled) && isFinite(outputs.sparse?.values) && isFinite(outputs.colbert);

const NO_HEADS: HeadRequest = { sparse: false, colbert: false, hidden: false };

export class BatchScheduler {
  private queue: Entry[] = [];
  private queuedTokens = 0;
  private reservedInputs = 0;
  private reservedTokens = 0;
  private running: { readonly batch: Entry[]; readonly abort: AbortController } | undefined;
  private pumping = false;
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

  /**
   * Reserves room for `inputs` inputs of at most `tokens` tokens together. Throws QueueFullError when
   * they do not fit now, RequestTooLargeError when they never could.
   */
  admit(inputs: number, tokens: number): Admission {
    this.reserve(inputs, tokens);
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      this.reservedInputs -= inputs;
      this.reservedTokens -= tokens;
    };
    return {
      submit: (sequences, sink, submitOptions) => {
        if (!held) return Promise.reject(new Error("this admission was already used"));
        release();
        return this.enqueue(sequences, sink, submitOptions);
      },
      release,
    };
  }

  /** Admits and submits at once (the tokens are known exactly); the outputs come back in the order given. */
  async submit(sequences: readonly Uint32Array[], submitOptions: SubmitOptions = {}): Promise<SequenceOutputs[]> {
    const outputs = new Array<SequenceOutputs>(sequences.length);
    await this.admit(sequences.length, totalTokens(sequences)).submit(sequences, (index, output) => (outputs[index] = output), submitOptions);
    return outputs;
  }

  /** Refuses new work; resolves once everything accepted so far has finished. */
  async close(): Promise<void> {
    this.closed = true;
    await this.idle;
  }

  private reserve(inputs: number, tokens: number): void {
    this.ensureRoom(inputs, tokens);
    this.reservedInputs += inputs;
    this.reservedTokens += tokens;
  }

  private ensureRoom(inputs: number, tokens: number): void {
    if (this.closed) throw new SchedulerClosedError("the server is shutting down");
    const { maxQueueInputs, maxQueueTokens } = this.options;
    if (inputs > maxQueueInputs) throw new RequestTooLargeError("inputs", inputs, maxQueueInputs);
    if (tokens > maxQueueTokens) throw new RequestTooLargeError("tokens", tokens, maxQueueTokens);
    const heldInputs = this.queue.length + this.reservedInputs;
    const heldTokens = this.queuedTokens + this.reservedTokens;
    if (heldInputs + inputs > maxQueueInputs || heldTokens + tokens > maxQueueTokens) {
      throw new QueueFullError(
        `the queue holds ${heldInputs} inputs (${heldTokens} tokens); ` +
          `this request's ${inputs} inputs (${tokens} tokens) do not fit`,
      );
    }
  }

  private enqueue(sequences: readonly Uint32Array[], sink: OutputSink, submitOptions: SubmitOptions = {}): Promise<void> {
    if (sequences.length === 0) return Promise.resolve();
    const wanted = submitOptions.heads;
    const heads = wanted?.sparse || wanted?.colbert || wanted?.hidden ? wanted : undefined;
    if (heads && !this.embedder.heads) return Promise.reject(new Error("the engine runs no heads: sparse and ColBERT outputs are unavailable"));
    const tokens = totalTokens(sequences);
    // the exact count may exceed the bound the room was reserved with (rare: text the tokenizer's
    // normaliser expands); it is checked again, without the reservation just given back
    try {
      this.ensureRoom(sequences.length, tokens);
    } catch (error) {
      return Promise.reject(error);
    }
    if (submitOptions.signal?.aborted) return Promise.reject(new RequestAbortedError("the client went away"));

    return new Promise<void>((resolve, reject) => {
      const { signal, timeoutMs = 0 } = submitOptions;
      const onAbort = () => job.finish(new RequestAbortedError("the client went away"));
      const timer = timeoutMs > 0 ? setTimeout(() => job.finish(new SchedulerTimeoutError(timeoutMs)), timeoutMs) : undefined;
      const job: Job = {
        sink,
        heads,
        pending: sequences.length,
        settled: false,
        finish: (error) => {
          if (job.settled) return;
          job.settled = true;
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          if (error) {
            this.dropQueued(job);
            this.stopIfAbandoned();
            reject(error);
          } else {
            resolve();
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

  private dropQueued(job: Job): void {
    const kept = this.queue.filter((entry) => entry.job !== job);
    const dropped = this.queue.length - kept.length;
    if (dropped === 0) return;
    this.queue = kept;
    this.queuedTokens = totalTokens(kept.map((entry) => entry.tokens));
    this.observer.onQueueDepth?.(this.queue.length);
    this.observer.onCancelled?.(dropped, "queued");
  }

  /** Stops the running batch once no request is left to take any of its vectors. */
  private stopIfAbandoned(): void {
    const running = this.running;
    if (!running || running.abort.signal.aborted || !running.batch.every((entry) => entry.job.settled)) return;
    running.abort.abort();
    this.observer.onCancelled?.(running.batch.length, "running");
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
    if (this.pumping) return;
    this.pumping = true;
    this.idle = new Promise((resolve) => (this.markIdle = resolve));
    try {
      while (this.queue.length > 0) await this.run(this.takeBatch());
    } finally {
      this.pumping = false;
      this.markIdle();
    }
  }

  private async run(batch: Entry[]): Promise<void> {
    const started = performance.now();
    const tokens = totalTokens(batch.map((entry) => entry.tokens));
    const abort = new AbortController();
    this.running = { batch, abort };
    let outputs: SequenceOutputs[];
    try {
      outputs = await this.infer(batch, abort.signal);
    } catch (error) {
      for (const entry of batch) entry.job.finish(error instanceof Error ? error : new Error(String(error)));
      return;
    } finally {
      this.running = undefined;
    }
    this.observer.onBatch?.({ sequences: batch.length, tokens, seconds: (performance.now() - started) / 1000 });
    batch.forEach((entry, row) => {
      const { job } = entry;
      if (job.settled) return;
      if (!allFinite(outputs[row])) {
        this.observer.onNonFinite?.();
        job.finish(new NonFiniteVectorError(entry.index));
        return;
      }
      try {
        job.sink(entry.index, outputs[row]);
      } catch (error) {
        job.finish(error instanceof Error ? error : new Error(String(error)));
        return;
      }
      if (--job.pending === 0) job.finish();
    });
  }

  /** One forward pass for the batch; the heads run only when one of its requests asks for them. */
  private async infer(batch: readonly Entry[], signal: AbortSignal): Promise<SequenceOutputs[]> {
    const sequences = batch.map((entry) => entry.tokens);
    const heads = this.embedder.heads;
    if (heads && batch.some((entry) => entry.job.heads)) {
      return heads.embedBatch(sequences, batch.map((entry) => entry.job.heads ?? NO_HEADS), signal);
    }
    const packed = await this.embedder.embedBatch(sequences, signal);
    const dim = this.embedder.info.dimensions;
    return sequences.map((_, row) => ({ pooled: packed.subarray(row * dim, (row + 1) * dim) }));
  }
}

function totalTokens(sequences: readonly Uint32Array[]): number {
  return sequences.reduce((sum, sequence) => sum + sequence.length, 0);
}
