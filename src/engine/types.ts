/**
 * The boundary between the server and whatever runs the model. The HTTP layer and the scheduler only
 * see this interface, so an engine (node-llama-cpp, our native addon) can be swapped without touching
 * either of them.
 */

export type EngineName = "native" | "node-llama-cpp";
export type DeviceName = "cpu" | "cuda";
/** What the user asked for: `auto` picks CUDA when a usable GPU is there, CPU otherwise. */
export type DeviceRequest = DeviceName | "auto";
/**
 * What attention's products (Q.K, P.V) run on: F32, or with F32 softmax 16-bit integers (native engine, CPUs with AVX2
 * and no AVX-512) or BF16 (native engine, CPUs with AVX512-BF16).
 */
export type AttentionPrecision = "f32" | "int16" | "bf16";
/** What to run them on: `auto` takes int16 or bf16 where the weights are quantised and the engine has it, F32 otherwise. */
export type AttentionPrecisionRequest = AttentionPrecision | "auto";

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
  /** BGE-M3's sparse and ColBERT heads; an engine that cannot run them leaves `Embedder.heads` unset. */
  readonly heads?: HeadWeights;
  /** What attention's products should run on, where the engine has a choice (default "auto"). */
  readonly attentionPrecision?: AttentionPrecisionRequest;
}

/** BGE-M3's heads besides the pooled vector (FlagEmbedding's sparse_linear and colbert_linear), F32. */
export interface HeadWeights {
  /** Width of the hidden states the heads read (the model's hidden size). */
  readonly hiddenSize: number;
  readonly sparse: { readonly weight: Float32Array; readonly bias: number };
  /** weight: outputSize rows of hiddenSize floats (torch's Linear layout). */
  readonly colbert: { readonly weight: Float32Array; readonly bias: Float32Array; readonly outputSize: number };
}

/** What one sequence asks for besides its pooled vector. */
export interface HeadRequest {
  readonly sparse: boolean;
  readonly colbert: boolean;
  /** The encoder's last hidden states themselves (captured by the same pass the heads read). */
  readonly hidden: boolean;
}

/** Sparse lexical weights: ascending token ids (no `<s>`, `</s>`, `<pad>`, `<unk>`) and their weights (> 0). */
export interface SparseWeights {
  readonly indices: Uint32Array;
  readonly values: Float32Array;
}

/** One sequence's outputs from one forward pass. */
export interface SequenceOutputs {
  /** The pooled vector, not normalised. */
  readonly pooled: Float32Array;
  /** When asked for: the largest weight of each token id over its positions. */
  readonly sparse?: SparseWeights;
  /** When asked for: one unit vector per token after `<s>` (`</s>` included), packed. */
  readonly colbert?: Float32Array;
  /** When asked for: the last hidden state (`info.dimensions` floats) of each token after `<s>`, packed. */
  readonly hidden?: Float32Array;
}

/** The heads of an engine that runs them. */
export interface EmbedderHeads {
  /** Length of one ColBERT vector. */
  readonly colbertDimensions: number;
  /**
   * embedBatch() plus what `requests[i]` asks of sequence i, from the same forward pass: the heads run
   * on the encoder's last hidden states.
   */
  embedBatch(sequences: readonly Uint32Array[], requests: readonly HeadRequest[], signal?: AbortSignal): Promise<SequenceOutputs[]>;
}

/** The model's vocabulary, as its GGUF stores it. */
export interface Vocabulary {
  /** The entry of each id (SentencePiece's "\u2581" word marker kept); every id must be in [0, nVocab). */
  texts(ids: Uint32Array): string[];
  /** Control and unknown tokens (`<s>`, `<pad>`, `</s>`, `<unk>`, `<mask>`): what a decode may skip. */
  readonly special: ReadonlySet<number>;
}

export type LlamaLogs = "none" | "warnings" | "all";

export interface Embedder {
  readonly engine: EngineName;
  readonly device: DeviceName;
  readonly info: ModelInfo;
  readonly limits: BatchLimits;
  readonly vocabulary: Vocabulary;
  /** Set when the engine was given heads and runs them. */
  readonly heads?: EmbedderHeads;
  /** What attention's products run on, where the engine chooses it (the native engine). */
  readonly attentionPrecision?: AttentionPrecision;
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

/** One engine batch, as the scheduler reports it. */
export interface BatchStats {
  readonly sequences: number;
  readonly tokens: number;
  readonly seconds: number;
}

/** What the scheduler in front of an engine reports as it runs (metrics observe through this). */
export interface SchedulerObserver {
  onBatch?(stats: BatchStats): void;
  onQueueDepth?(inputs: number): void;
  /** Inputs whose request went away: dropped from the queue, or stopped in a running batch. */
  onCancelled?(inputs: number, stage: "queued" | "running"): void;
  /** An input whose vector came back with NaN or Infinity (its request failed; nothing was sent). */
  onNonFinite?(): void;
}
