/**
 * The whole JS surface of our N-API addon (native/src/*.cpp), typed in one place.
 *
 * Every call that touches llama.cpp runs on the libuv thread pool and returns a Promise; argument and
 * limit errors reject before anything reaches llama.cpp, and llama.cpp failures reject with llama.cpp's
 * own reason. Every rejection carries a `code` (NativeErrorCode), chosen where the failure happens.
 */

export type NativeLogLevel = "none" | "debug" | "info" | "warn" | "error";

export type NativeErrorCode =
  /** A malformed argument (not an array, empty batch, bad option). */
  | "ERR_INVALID_ARG"
  /** A sequence is empty or holds something that is not an integer in [0, nVocab). */
  | "ERR_INVALID_TOKENS"
  /** Too many sequences, too many tokens in the batch, or one sequence too long. */
  | "ERR_BATCH_LIMIT"
  /** The model was disposed. */
  | "ERR_DISPOSED"
  /** The model file or its context could not be loaded (file missing, llama.cpp refused it, no pooling). */
  | "ERR_LOAD"
  /** A llama.cpp call failed on a loaded model (tokenize, decode). */
  | "ERR_LLAMA"
  /** embed() stopped because its cancel flag was set (before it started or between graph nodes). */
  | "ERR_CANCELLED"
  /** embedWithHeads() on a model loaded without heads. */
  | "ERR_NO_HEADS"
  /** Anything else (a bug): the message says what. */
  | "ERR_NATIVE";

export interface NativeError extends Error {
  code: NativeErrorCode;
}

export interface NativeLoadOptions {
  readonly modelPath: string;
  /** n_ctx; 0 or absent = the model's training context. */
  readonly contextSize?: number;
  /** n_batch = n_ubatch: most tokens (all sequences together) one embed() call takes; absent = contextSize. */
  readonly batchSize?: number;
  /** n_seq_max: most sequences one embed() call takes, 1..256 and <= batchSize. Default 1. */
  readonly sequences?: number;
  /** CPU threads; 0 or absent = hardware concurrency. */
  readonly threads?: number;
  /** false (default): no GPU device is used at all (no layers, no op offload). */
  readonly useGpu?: boolean;
  /** Layers to offload when useGpu; -1 or "all" = every layer. Anything but an integer >= -1 is ERR_INVALID_ARG. */
  readonly gpuLayers?: number | "all";
  /** Flash attention: "auto" (default), "on", "off" (or a boolean). */
  readonly flashAttention?: "auto" | "on" | "off" | boolean;
  /**
   * Flash attention keeps K/V in F32 (patch 0003: the CPU's F32 tiled kernel) instead of casting them
   * to F16. Default: true unless useGpu (GPU kernels want F16 K/V).
   */
  readonly f32KeyValues?: boolean;
  /**
   * With F32 K/V on the CPU, what attention's two products (Q.K, P.V) run on (patch 0003), softmax in F32: "f32";
   * "int16" (16-bit integers with per-row scales, native/kernels/flash_attn_i16_avx2.h: builds for AVX2 without
   * AVX-512, CPU feature BGE_M3_FA_INT16); "bf16" (flash_attn_bf16_avx512.h: builds with AVX512-BF16, BGE_M3_FA_BF16);
   * where the build lacks the one asked for, F32 runs. "auto" (default): whichever of int16 and bf16 the build has
   * where the model's weights are quantised, F32 otherwise.
   */
  readonly attentionProducts?: "auto" | "f32" | "int16" | "bf16";
  /** Time every graph node (scripts/profile-long.ts); slower, for profiling only. */
  readonly profile?: boolean;
  /**
   * Read the token-embedding rows a batch needs from the model file with pread into a small input of the
   * table's own type (patch 0011, native/src/token_rows.h), instead of get_rows on the mapped table, which faults
   * ~64 KB of the file into RSS around every row. Same bytes, same vectors. Default true; the GPU path
   * (useGpu) and a table not read in place from the mapping keep llama.cpp's own lookup. false: for tests.
   */
  readonly tokenRowsFromFile?: boolean;
  /** BGE-M3's sparse and ColBERT heads, run by embedWithHeads(); absent = pooled vectors only. */
  readonly heads?: NativeHeads;
}

/** The heads' weights (FlagEmbedding's sparse_linear and colbert_linear), copied at load. */
export interface NativeHeads {
  /** Width of the hidden states the heads read: must equal the model's (ERR_INVALID_ARG otherwise). */
  readonly hiddenSize: number;
  readonly sparseWeight: Float32Array;
  readonly sparseBias: number;
  /** Length of a ColBERT vector. */
  readonly colbertSize: number;
  /** colbertSize rows of hiddenSize floats (torch's Linear layout). */
  readonly colbertWeight: Float32Array;
  readonly colbertBias: Float32Array;
}

/** embedWithHeads()'s per-sequence request: bit 1 = sparse, bit 2 = ColBERT, bit 4 = hidden states (0 = pooled vector only). */
export const NATIVE_SPARSE = 1;
export const NATIVE_COLBERT = 2;
export const NATIVE_HIDDEN = 4;

export interface NativeHeadsResult {
  /** Pooled vectors as embed() returns them. */
  readonly pooled: Float32Array;
  /** Per sequence that asked: ascending token ids (without <s>, </s>, <pad>, <unk>) and their weights (> 0). */
  readonly sparse: ({ readonly indices: Uint32Array; readonly values: Float32Array } | null)[];
  /** Per sequence that asked: one unit vector of colbertSize floats per position after <s>, packed. */
  readonly colbert: (Float32Array | null)[];
  /** Per sequence that asked: the encoder's last hidden state (nEmbd floats) of each position after <s>, packed. */
  readonly hidden: (Float32Array | null)[];
}

export interface NativeModelInfo {
  readonly nVocab: number;
  /** Length of a pooled vector (n_embd_out). */
  readonly nEmbd: number;
  readonly nCtxTrain: number;
  readonly nCtx: number;
  /** Most tokens per embed() call (n_batch = n_ubatch). */
  readonly nBatch: number;
  /** Most sequences per embed() call. */
  readonly nSeqMax: number;
  /** Most tokens one sequence may have: min(nBatch, nCtx, nCtxTrain). */
  readonly maxSequenceTokens: number;
  readonly bosToken: number;
  readonly eosToken: number;
  readonly pooling: "mean" | "cls" | "last";
  /** Layers were offloaded to a GPU device. */
  readonly usesGpu: boolean;
  /** Comma-separated ggml names of the GPU devices the model uses ("" when none). */
  readonly gpuDevices: string;
  readonly gpuLayers: number;
  readonly threads: number;
  readonly flashAttention: "auto" | "on" | "off";
  /** The f32KeyValues setting the context was created with. */
  readonly f32KeyValues: boolean;
  /** What attention's products run on: "int16" or "bf16" where asked for (or auto), F32 K/V on the CPU and the CPU backend has it. */
  readonly attentionProducts: "f32" | "int16" | "bf16";
  /** The token-embedding rows come from the model file with pread (tokenRowsFromFile, and the table is read in place). */
  readonly tokenRowsFromFile: boolean;
  /** The context keeps a KV cache (causal models); false for encoder-only models like BGE-M3. */
  readonly hasMemory: boolean;
  /** llama.cpp's one-line description, e.g. "bert 568M Q8_0". */
  readonly description: string;
  /** Length of a ColBERT vector; 0 when loaded without heads. */
  readonly colbertSize: number;
  /** Ids of the control and unknown tokens (<s>, <pad>, </s>, <unk>, <mask>), ascending. */
  readonly specialTokens: Uint32Array;
}

export interface NativeEmbeddingModel {
  readonly info: NativeModelInfo;
  readonly disposed: boolean;
  /** Token ids per text, `<s>` and `</s>` added (llama_tokenize with add_special, no special parsing). */
  tokenize(texts: readonly string[]): Promise<Uint32Array[]>;
  /**
   * One decode: every sequence gets its own seq_id; resolves with sequences.length pooled vectors of
   * info.nEmbd floats, packed row after row. Calls on one model run one at a time. Setting `cancel[0]`
   * to non-zero (any time, from JS) stops the call: before it starts, or between graph nodes (llama.cpp's
   * abort callback), rejecting with ERR_CANCELLED; the context stays ready for the next call.
   */
  embed(sequences: readonly (Uint32Array | Int32Array | readonly number[])[], cancel?: Int32Array): Promise<Float32Array>;
  /**
   * embed() plus the heads' outputs each sequence asks for (`outputs[i]`: NATIVE_SPARSE | NATIVE_COLBERT),
   * from the same decode: the encoder's last hidden states are copied out as the graph computes them and the
   * heads run on them after (ColBERT as a ggml product on the CPU backend). ERR_NO_HEADS without heads.
   */
  embedWithHeads(
    sequences: readonly (Uint32Array | Int32Array | readonly number[])[],
    outputs: Uint8Array,
    cancel?: Int32Array,
  ): Promise<NativeHeadsResult>;
  /** Vocabulary entries of token ids as stored (SentencePiece's "\u2581" word marker kept). Synchronous lookup. */
  tokenTexts(ids: Uint32Array): string[];
  /** Bytes of the context's host output buffer as of the last decode (logits + per-token embeddings). */
  outputBufferSize(): number;
  /** Bytes of the scheduler's compute buffers (all backends), as of load or the last decode. */
  computeBufferSize(): number;
  /**
   * Per-op compute time since the last call, {op: [ms, nodes]} (empty unless loaded with profile: true).
   * Never waits for a running decode.
   */
  takeProfile(): Record<string, [number, number]>;
  /**
   * Frees the context and model once every call made before it has settled (queued ones included: they
   * run normally); later calls reject with ERR_DISPOSED.
   */
  dispose(): Promise<void>;
}

export interface NativeDevice {
  readonly name: string;
  readonly description: string;
  readonly type: "cpu" | "gpu" | "igpu" | "accel" | "other";
  readonly memoryFree: number;
  readonly memoryTotal: number;
}

export interface NativeAddon {
  readonly build: {
    /** Backends are .so files loaded at run time (portable builds). */
    readonly backendDl: boolean;
    readonly backendDir: string | null;
    /** Built with GGML_CUDA. */
    readonly cuda: boolean;
    /** The NATIVE_CPU flavour it was built as (scripts/build-native.ts). */
    readonly cpu: "native" | "portable" | "avx2" | "avx-vnni";
  };
  loadModel(options: NativeLoadOptions): Promise<NativeEmbeddingModel>;
  /** ggml's devices (CPU, and CUDA GPUs when built with CUDA and a usable GPU is there). */
  devices(): NativeDevice[];
  /** llama.cpp/ggml log lines at or above this level go to stderr. Default "none". */
  setLogLevel(level: NativeLogLevel): void;
  getLogLevel(): NativeLogLevel;
  /** llama_print_system_info(): the CPU features the build uses. */
  systemInfo(): string;
}
