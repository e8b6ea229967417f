/**
 * The boundary between the server and whatever runs the model. The HTTP layer and the scheduler only
 * see this interface, so an engine (node-llama-cpp, our native addon) can be swapped without touching
 * either of them.
 */

export type EngineName = "native" | "node-llama-cpp";
export type DeviceName = "cpu" | "cuda";
/** What the user asked for: `auto` picks CUDA when a usable GPU is there, CPU otherwise. */
export type DeviceRequest = DeviceName | "auto";

export interface ModelInfo {
  /** Valid token ids are the integers in [0, nVocab). */
  readonly nVocab: number;
  /** Length of one embedding vector. */
  readonly dimensions: number;
  /** Most tokens one input may have, specials included. */
  readonly contextSize: number;
  /** `<s>`: the token every input starts with (its vector is the CLS embedding). */
  readonly bosToken: number;
  /** `</s>`: the token every input ends with. */
  readonly eosToken: number;
}

export interface BatchLimits {
  /** Most tokens (summed over sequences) one `embedBatch` call accepts. */
  readonly maxBatchTokens: number;
  /** Most sequences one `embedBatch` call accepts. */
  readonly maxBatchSequences: number;
}

export interface EmbedderOptions {
  readonly modelPath: string;
  readonly device: DeviceRequest;
  /** 0 = one per physical core, within the container's CPU quota (resolveThreads). */
  readonly threads: number;
  readonly contextSize: number;
  /** Upper bounds the engine may lower to what it supports. */
  readonly maxBatchTokens: number;
  readonly maxBatchSequences: number;
  /**
   * llama.cpp's own log lines (raw text on stderr, outside the JSON request log): none (default; its
   * errors still reach the caller as exceptions), its warnings and errors, or everything.
   */
  readonly llamaLogs?: LlamaLogs;
}

export type LlamaLogs = "none" | "warnings" | "all";

export interface Embedder {
  readonly engine: EngineName;
  readonly device: DeviceName;
  readonly info: ModelInfo;
  readonly limits: BatchLimits;
  /**
   * Token ids of each text as the model sees them: `<s>` first, `</s>` last, not truncated. Runs off
   * the event loop.
   */
  tokenize(texts: readonly string[]): Promise<Uint32Array[]>;
  /**
   * One pooled (not yet normalised) vector per sequence, packed row after row: `sequences.length`
   * rows of `info.dimensions` floats. Every id must be in [0, nVocab); the sequences together must
   * fit `limits`. Runs off the event loop. When `signal` aborts (nobody wants the vectors any more)
   * an engine that can stop mid-way rejects soon with EmbedCancelledError and is ready for the next
   * call; one that cannot finishes the batch.
   */
  embedBatch(sequences: readonly Uint32Array[], signal?: AbortSignal): Promise<Float32Array>;
  dispose(): Promise<void>;
}
