import { getLlama, LlamaLogLevel, type Llama, type LlamaEmbeddingContext, type LlamaModel, type Token } from "node-llama-cpp";
import { DeviceUnavailableError } from "../errors.js";
import { resolveThreads } from "../threads.js";
import type { Embedder, EmbedderOptions, ModelInfo } from "../types.js";

/**
 * Runs the model through node-llama-cpp's embedding context: one input per evaluation, on its own
 * worker thread. Its batch is sized to the whole context, because a longer input would be evaluated
 * in 512-token chunks and the CLS vector would silently come from the last chunk.
 */
class NodeLlamaCppEmbedder implements Embedder {
  readonly engine = "node-llama-cpp" as const;
  readonly limits;

  constructor(
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly context: LlamaEmbeddingContext,
    readonly info: ModelInfo,
    readonly device: "cpu" | "cuda",
  ) {
    this.limits = { maxBatchTokens: info.contextSize, maxBatchSequences: 1 };
  }

  async tokenize(texts: readonly string[]): Promise<Uint32Array[]> {
    return texts.map((text) => {
      const tokens = this.model.tokenize(text, false);
      return Uint32Array.from([this.info.bosToken, ...tokens, this.info.eosToken]);
    });
  }

  async embedBatch(sequences: readonly Uint32Array[]): Promise<Float32Array> {
    if (sequences.length !== 1) throw new Error(`this engine embeds one sequence at a time, got ${sequences.length}`);
    const [sequence] = sequences;
    const embedding = await this.context.getEmbeddingFor(Array.from(sequence) as Token[]);
    return Float32Array.from(embedding.vector);
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }
}

function requiredToken(value: Token | null, name: string): number {
  if (value === null) throw new Error(`the model's vocabulary has no ${name} token`);
  return value;
}

export async function loadNodeLlamaCppEmbedder(options: EmbedderOptions): Promise<Embedder> {
  const llama = await getLlama({
    gpu: options.device === "cpu" ? false : options.device === "cuda" ? "cuda" : "auto",
    build: "never",
    logLevel: { none: LlamaLogLevel.error, warnings: LlamaLogLevel.warn, all: LlamaLogLevel.debug }[options.llamaLogs ?? "none"],
    progressLogs: false,
  }).catch((error: Error) => {
    if (options.device === "cuda") throw new DeviceUnavailableError(`DEVICE=cuda but no usable CUDA GPU: ${error.message}`);
    throw error;
  });
  if (options.device === "cuda" && llama.gpu !== "cuda") {
    await llama.dispose();
    throw new DeviceUnavailableError("DEVICE=cuda but no usable CUDA GPU was found (node-llama-cpp loaded no CUDA backend)");
  }
  const model = await llama.loadModel({ modelPath: options.modelPath, gpuLayers: llama.gpu === false ? 0 : "max" });
  try {
    const contextSize = Math.min(options.contextSize, model.trainContextSize);
    // node-llama-cpp refuses inputs of contextSize tokens or more; one extra slot lets a full-length
    // input through, and positions never go past contextSize - 1.
    const context = await model.createEmbeddingContext({
      contextSize: contextSize + 1,
      batchSize: contextSize + 1,
      threads: resolveThreads(options.threads),
    });
    const info: ModelInfo = {
      nVocab: vocabularySize(model),
      dimensions: model.embeddingVectorSize,
      contextSize,
      bosToken: requiredToken(model.tokens.bos, "<s>"),
      eosToken: requiredToken(model.tokens.eos, "</s>"),
    };
    return new NodeLlamaCppEmbedder(llama, model, context, info, llama.gpu === false ? "cpu" : "cuda");
  } catch (error) {
    await model.dispose();
    await llama.dispose();
    throw error;
  }
}

function vocabularySize(model: LlamaModel): number {
  const tokens = model.fileInfo.metadata.tokenizer?.ggml?.tokens;
  if (!Array.isArray(tokens)) throw new Error("the model's GGUF has no tokenizer.ggml.tokens");
  return tokens.length;
}
