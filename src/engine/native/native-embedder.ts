import { DeviceUnavailableError, EmbedCancelledError, EngineUnavailableError } from "../errors.js";
import { resolveThreads } from "../threads.js";
import type {
  AttentionPrecision,
  AttentionPrecisionRequest,
  BatchLimits,
  DeviceName,
  Embedder,
  EmbedderHeads,
  EmbedderOptions,
  HeadRequest,
  Vocabulary,
  HeadWeights,
  ModelInfo,
  SequenceOutputs,
} from "../types.js";
import { NATIVE_COLBERT, NATIVE_HIDDEN, NATIVE_SPARSE, type NativeAddon, type NativeEmbeddingModel, type NativeError, type NativeHeads } from "./addon-types.js";
import { loadAddon, nativeAddonLoadError } from "./load-addon.js";

/** llama.cpp's cap on sequences per context (LLAMA_MAX_SEQ). */
const MAX_SEQUENCES = 256;

/**
 * Our addon: many sequences per decode (each its own seq_id), no logits buffer, vectors pooled by
 * llama.cpp and returned as one Float32Array. Not normalised (the server does that).
 */
class NativeEmbedder implements Embedder {
  readonly engine = "native" as const;
  readonly heads: EmbedderHeads | undefined;
  readonly vocabulary: Vocabulary;
  readonly attentionPrecision: AttentionPrecision;
  private queue: Promise<unknown> = Promise.resolve();
  private disposing: Promise<void> | undefined;

  constructor(
    private readonly model: NativeEmbeddingModel,
    readonly info: ModelInfo,
    readonly limits: BatchLimits,
    readonly device: DeviceName,
  ) {
    this.attentionPrecision = model.info.attentionProducts;
    this.heads =
      model.info.colbertSize > 0
        ? {
            colbertDimensions: model.info.colbertSize,
            embedBatch: (sequences, requests, signal) => this.embedWithHeads(sequences, requests, signal),
          }
        : undefined;
    this.vocabulary = { texts: (ids) => model.tokenTexts(ids), special: new Set(model.info.specialTokens) };
  }

  tokenize(texts: readonly string[]): Promise<Uint32Array[]> {
    return this.model.tokenize(texts);
  }

  embedBatch(sequences: readonly Uint32Array[], signal?: AbortSignal): Promise<Float32Array> {
    return this.serialised((cancel) => this.model.embed(sequences, cancel), signal);
  }

  private async embedWithHeads(
    sequences: readonly Uint32Array[],
    requests: readonly HeadRequest[],
    signal?: AbortSignal,
  ): Promise<SequenceOutputs[]> {
    const masks = Uint8Array.from(
      requests,
      (r) => (r.sparse ? NATIVE_SPARSE : 0) | (r.colbert ? NATIVE_COLBERT : 0) | (r.hidden ? NATIVE_HIDDEN : 0),
    );
    const result = await this.serialised((cancel) => this.model.embedWithHeads(sequences, masks, cancel), signal);
    const dim = this.info.dimensions;
    return sequences.map((_, i) => ({
      pooled: result.pooled.subarray(i * dim, (i + 1) * dim),
      sparse: result.sparse[i] ?? undefined,
      colbert: result.colbert[i] ?? undefined,
      hidden: result.hidden[i] ?? undefined,
    }));
  }

  /** One decode at a time (the addon serialises too; queueing here keeps the uv pool free). */
  private serialised<T>(call: (cancel: Int32Array) => Promise<T>, signal?: AbortSignal): Promise<T> {
    // the addon's abort callback reads this flag between graph nodes
    const cancel = new Int32Array(1);
    const onAbort = () => Atomics.store(cancel, 0, 1);
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) onAbort();
    const run = this.queue
      .then(() => call(cancel))
      .catch((error: NativeError) => {
        throw error.code === "ERR_CANCELLED" ? new EmbedCancelledError(error.message) : error;
      })
      .finally(() => signal?.removeEventListener("abort", onAbort));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Frees the model after every batch already handed to embedBatch has run. */
  dispose(): Promise<void> {
    this.disposing ??= this.queue.then(() => this.model.dispose());
    return this.disposing;
  }
}

function chooseGpu(addon: NativeAddon, options: EmbedderOptions): boolean {
  if (options.device === "cpu") return false;
  const gpus = addon.devices().filter((d) => d.type === "gpu" || d.type === "igpu");
  if (addon.build.cuda && gpus.length > 0) return true;
  if (options.device === "cuda") {
    throw new DeviceUnavailableError(
      addon.build.cuda
        ? "DEVICE=cuda but the native addon found no usable CUDA GPU (driver missing or no device visible)"
        : "DEVICE=cuda but the native addon was built without CUDA (rebuild with NATIVE_GPU=cuda npm run build:native)",
    );
  }
  return false;
}

/** Attention settings of the native engine (tests and benchmarks; the server uses the defaults). */
export interface NativeAttentionOptions {
  /** Flash attention: "auto" (default: on wherever the backend supports it, the CPU included). */
  readonly flashAttention?: "auto" | "on" | "off";
  /**
   * Keep K/V in F32 for flash attention (patch 0003's CPU kernel: exact F32, and faster than both the stock
   * F16 kernel and attention without flash at every length). Default: on the CPU only.
   */
  readonly f32KeyValues?: boolean;
  /** What that kernel's products run on; default: the engine option attentionPrecision. */
  readonly attentionProducts?: AttentionPrecisionRequest;
}

/**
 * Named attention settings for comparisons (`npm run profile -- --attention`):
 * "auto" = the server's default on the CPU (int16 or BF16 products for quantised weights where the build has them,
 * else F32), "f32" = that kernel with F32 products, "int16" and "bf16" = with those products (ATTENTION_PRECISION),
 * "f16" = llama.cpp's stock CPU flash attention (K/V cast to F16), "plain" = flash attention off
 * (n_tokens^2 F32 scores per head).
 */
export const NATIVE_ATTENTION_MODES: Readonly<Record<string, NativeAttentionOptions>> = Object.freeze({
  auto: { flashAttention: "auto", f32KeyValues: true, attentionProducts: "auto" },
  f32: { flashAttention: "auto", f32KeyValues: true, attentionProducts: "f32" },
  int16: { flashAttention: "auto", f32KeyValues: true, attentionProducts: "int16" },
  bf16: { flashAttention: "auto", f32KeyValues: true, attentionProducts: "bf16" },
  f16: { flashAttention: "auto", f32KeyValues: false },
  plain: { flashAttention: "off" },
});

/** The heads in the addon's load-option shape. */
export function nativeHeads(heads: HeadWeights): NativeHeads {
  return {
    hiddenSize: heads.hiddenSize,
    sparseWeight: heads.sparse.weight,
    sparseBias: heads.sparse.bias,
    colbertSize: heads.colbert.outputSize,
    colbertWeight: heads.colbert.weight,
    colbertBias: heads.colbert.bias,
  };
}

export async function loadNativeEmbedder(options: EmbedderOptions, attention: NativeAttentionOptions = {}): Promise<Embedder> {
  const addon = loadAddon();
  if (!addon) throw new EngineUnavailableError(`the native addon cannot be loaded: ${nativeAddonLoadError() ?? "unknown reason"}`);
  if (!Number.isInteger(options.contextSize) || options.contextSize < 2) {
    throw new RangeError(`contextSize must be an integer >= 2, got ${options.contextSize}`);
  }

  addon.setLogLevel(({ none: "none", warnings: "warn", all: "debug" } as const)[options.llamaLogs ?? "none"]);
  const useGpu = chooseGpu(addon, options);
  // a whole contextSize-token input must fit one decode: non-causal attention needs it in one ubatch
  const batchTokens = Math.max(Math.floor(options.maxBatchTokens) || 0, options.contextSize);
  const sequences = Math.max(1, Math.min(Math.floor(options.maxBatchSequences) || 1, MAX_SEQUENCES, batchTokens));

  const model = await addon.loadModel({
    modelPath: options.modelPath,
    contextSize: options.contextSize,
    batchSize: batchTokens,
    sequences,
    threads: resolveThreads(options.threads),
    useGpu,
    gpuLayers: useGpu ? -1 : 0,
    flashAttention: attention.flashAttention ?? "auto",
    f32KeyValues: attention.f32KeyValues ?? !useGpu,
    attentionProducts: attention.attentionProducts ?? options.attentionPrecision ?? "auto",
    heads: options.heads && nativeHeads(options.heads),
  });
  try {
    const i = model.info;
    if (options.device === "cuda" && !i.usesGpu) {
      throw new DeviceUnavailableError("DEVICE=cuda but no layer of the model was offloaded to a GPU");
    }
    if (i.bosToken < 0 || i.bosToken >= i.nVocab) throw new Error("the model's vocabulary has no <s> token");
    if (i.eosToken < 0 || i.eosToken >= i.nVocab) throw new Error("the model's vocabulary has no </s> token");
    const info: ModelInfo = {
      nVocab: i.nVocab,
      dimensions: i.nEmbd,
      contextSize: Math.min(options.contextSize, i.maxSequenceTokens),
      bosToken: i.bosToken,
      eosToken: i.eosToken,
    };
    const limits: BatchLimits = { maxBatchTokens: i.nBatch, maxBatchSequences: i.nSeqMax };
    return new NativeEmbedder(model, info, limits, i.usesGpu ? "cuda" : "cpu");
  } catch (error) {
    await model.dispose();
    throw error;
  }
}
