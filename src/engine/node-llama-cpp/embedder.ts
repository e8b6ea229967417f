import { getLlama, LlamaLogLevel, type Llama, type LlamaEmbeddingContext, type LlamaModel, type Token } from "node-llama-cpp";
import { DeviceUnavailableError } from "../errors.js";
import { offThreadTokenizer } from "./tokenizer.js";
import { resolveThreads } from "../threads.js";
import type { Embedder, EmbedderOptions, ModelInfo, Vocabulary } from "../types.js";

/**
 * Runs the model through node-llama-cpp's embedding context: one input per evaluation, on its own
 * worker thread. Its batch is sized to the whole context, because a longer input would be evaluated
 * in 512-token chunks and the CLS vector would silently come from the last chunk. node-llama-cpp
 * tokenizes synchronously on the calling thread: small calls run here, larger ones on the process's
 * tokenizer thread.
 */
/**
 * Texts per tokenize() call tokenized on the event loop: up to 16 Ki characters take a few ms there.
 * Larger calls go to the tokenizer thread, whose own copy of the vocabulary costs seconds to load
 * (node-llama-cpp parses the GGUF's 250,002 tokens in JS), paid only by a server that gets them.
 */
const ON_LOOP_CHARACTERS = 16 * 1024;

class NodeLlamaCppEmbedder implements Embedder {
  readonly engine = "node-llama-cpp" as const;
  readonly limits;
  private usesTokenizerThread = false;

  constructor(
    private readonly modelPath: string,
    private readonly model: LlamaModel,
    private readonly context: LlamaEmbeddingContext,
    readonly info: ModelInfo,
    readonly vocabulary: Vocabulary,
    readonly device: "cpu" | "cuda",
    private readonly releaseLlama: () => Promise<void>,
  ) {
    this.limits = { maxBatchTokens: info.contextSize, maxBatchSequences: 1 };
  }

  tokenize(texts: readonly string[]): Promise<Uint32Array[]> {
    const characters = texts.reduce((sum, text) => sum + text.length, 0);
    if (characters <= ON_LOOP_CHARACTERS) return Promise.resolve(texts.map((text) => this.wrap(this.model.tokenize(text, false))));
    if (!this.usesTokenizerThread) {
      this.usesTokenizerThread = true;
      offThreadTokenizer().use(this.modelPath);
    }
    return offThreadTokenizer().tokenize(this.modelPath, texts);
  }

  private wrap(pieces: readonly Token[]): Uint32Array {
    const sequence = new Uint32Array(pieces.length + 2);
    sequence[0] = this.info.bosToken;
    sequence.set(pieces, 1);
    sequence[pieces.length + 1] = this.info.eosToken;
    return sequence;
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
    await this.releaseLlama();
    if (this.usesTokenizerThread) await offThreadTokenizer().release(this.modelPath);
  }
}

function requiredToken(value: Token | null, name: string): number {
  if (value === null) throw new Error(`the model's vocabulary has no ${name} token`);
  return value;
}

/**
 * One Llama (node-llama-cpp's loaded binding) per device request and log level while embedders use
 * it: getLlama tests its binary in a child process each time (seconds), and test processes run several
 * servers at once. Disposed with its last user (a live Llama keeps the process from exiting).
 */
const llamas = new Map<string, { readonly llama: Promise<Llama>; users: number }>();

function acquireLlama(device: EmbedderOptions["device"], llamaLogs: EmbedderOptions["llamaLogs"] = "none"): { llama: Promise<Llama>; release(): Promise<void> } {
  const key = `${device}:${llamaLogs}`;
  let entry = llamas.get(key);
  if (entry === undefined) {
    const llama = getLlama({
      gpu: device === "cpu" ? false : device === "cuda" ? "cuda" : "auto",
      build: "never",
      logLevel: { none: LlamaLogLevel.error, warnings: LlamaLogLevel.warn, all: LlamaLogLevel.debug }[llamaLogs],
      progressLogs: false,
    });
    entry = { llama, users: 0 };
    llamas.set(key, entry);
  }
  const held = entry;
  held.users++;
  let released = false;
  return {
    llama: held.llama,
    async release() {
      if (released) return;
      released = true;
      if (--held.users > 0) return;
      llamas.delete(key);
      await held.llama.then((llama) => llama.dispose(), () => undefined);
    },
  };
}

export async function loadNodeLlamaCppEmbedder(options: EmbedderOptions): Promise<Embedder> {
  const shared = acquireLlama(options.device, options.llamaLogs);
  const llama = await shared.llama.catch(async (error: Error) => {
    await shared.release();
    if (options.device === "cuda") throw new DeviceUnavailableError(`DEVICE=cuda but no usable CUDA GPU: ${error.message}`);
    throw error;
  });
  if (options.device === "cuda" && llama.gpu !== "cuda") {
    await shared.release();
    throw new DeviceUnavailableError("DEVICE=cuda but no usable CUDA GPU was found (node-llama-cpp loaded no CUDA backend)");
  }
  const model = await llama.loadModel({ modelPath: options.modelPath, gpuLayers: llama.gpu === false ? 0 : "max" }).catch(async (error: unknown) => {
    await shared.release();
    throw error;
  });
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
      nVocab: ggufVocabulary(model).tokens.length,
      dimensions: model.embeddingVectorSize,
      contextSize,
      bosToken: requiredToken(model.tokens.bos, "<s>"),
      eosToken: requiredToken(model.tokens.eos, "</s>"),
    };
    return new NodeLlamaCppEmbedder(options.modelPath, model, context, info, vocabularyOf(model), llama.gpu === false ? "cpu" : "cuda", shared.release);
  } catch (error) {
    await model.dispose();
    await shared.release();
    throw error;
  }
}

/** The GGUF's tokenizer.ggml.tokens and token_type, as node-llama-cpp read them from the file's header. */
function ggufVocabulary(model: LlamaModel): { tokens: readonly string[]; types: readonly number[] } {
  const ggml = model.fileInfo.metadata.tokenizer?.ggml as { tokens?: unknown; token_type?: unknown } | undefined;
  if (!Array.isArray(ggml?.tokens)) throw new Error("the model's GGUF has no tokenizer.ggml.tokens");
  return { tokens: ggml.tokens as string[], types: Array.isArray(ggml.token_type) ? (ggml.token_type as number[]) : [] };
}

/** llama.cpp's token types (llama_token_type): 2 unknown, 3 control. */
const UNKNOWN_TOKEN = 2;
const CONTROL_TOKEN = 3;

function vocabularyOf(model: LlamaModel): Vocabulary {
  const { tokens, types } = ggufVocabulary(model);
  const special = new Set<number>();
  types.forEach((type, id) => {
    if (type === UNKNOWN_TOKEN || type === CONTROL_TOKEN) special.add(id);
  });
  return {
    texts: (ids) =>
      Array.from(ids, (id) => {
        const text = tokens[id];
        if (text === undefined) throw new Error(`token id ${id} is not in the vocabulary`);
        return text;
      }),
    special,
  };
}
