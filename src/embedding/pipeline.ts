import {
  NonFiniteVectorError,
  QueueFullError,
  RequestAbortedError,
  RequestTooLargeError,
  SchedulerClosedError,
  SchedulerTimeoutError,
  type Admission,
  type BatchScheduler,
  type OutputSink,
} from "../engine/scheduler.js";
import type { Embedder, HeadRequest, SequenceOutputs, SparseWeights } from "../engine/types.js";
import {
  CapacityError,
  ClientGoneError,
  InputError,
  NonFiniteEmbeddingError,
  OutputUnavailableError,
  RequestTimeoutError,
  ShuttingDownError,
} from "./errors.js";
import { outputBytes, type OutputBudget, type OutputReservation, type OutputShape } from "./output-budget.js";
import { decodeTokens, textTokens, type TextToken } from "./tokens.js";
import { normalisePrefix } from "./vector.js";

export type { SparseWeights };

export type EmbeddingInput =
  | { readonly kind: "text"; readonly text: string; readonly param: string }
  | { readonly kind: "tokens"; readonly tokens: readonly number[]; readonly param: string };

/** Which of BGE-M3's outputs a request wants for every input. */
export interface OutputRequest {
  readonly dense: boolean;
  readonly sparse: boolean;
  readonly colbert: boolean;
  /** The encoder's last hidden state of every token (TEI's `/embed_all`); needs the native engine's heads. */
  readonly hidden?: boolean;
}

export interface EmbedRequest {
  readonly inputs: readonly EmbeddingInput[];
  readonly truncate: boolean;
  /**
   * Which end of an input longer than the context `truncate` cuts (default "end"): "start" keeps the end of
   * the text. `<s>` and `</s>` are kept either way.
   */
  readonly truncateFrom?: "end" | "start";
  /** Most tokens one input may have (`<s>` and `</s>` included), below the context; absent: the context. */
  readonly maxInputTokens?: number;
  /** Length of the returned dense vectors: a prefix, renormalised. */
  readonly dimensions: number;
  /** false: the dense vector's prefix as the model pools it, not scaled to unit length (default true). */
  readonly normalize?: boolean;
  /** Default: the dense vector only. Sparse and ColBERT come from the same forward pass. */
  readonly outputs?: OutputRequest;
  readonly signal?: AbortSignal;
}

/** One input's outputs, as asked for. */
export interface InputOutputs {
  /** Unit length, `dimensions` long. */
  readonly dense?: Float32Array;
  /** Ascending token ids and their weights. */
  readonly sparse?: SparseWeights;
  /** Unit vectors, one per token after `<s>` (`</s>` included), packed row after row. */
  readonly colbert?: Float32Array;
  /** The last hidden state of every token, `<s>` and `</s>` included (the model's width each), packed. */
  readonly hidden?: Float32Array;
}

/** What a forgotten item holds: nothing (EmbedResult.forget). */
const FORGOTTEN: InputOutputs = Object.freeze({});

export interface EmbedSummary {
  /** Every token the model saw, `<s>` and `</s>` included. */
  readonly promptTokens: number;
  readonly timings: { readonly queueAndInferenceMs: number };
}

export interface EmbedResult extends EmbedSummary {
  /** Each input's outputs, in input order (empty once forgotten). */
  readonly items: readonly InputOutputs[];
  /**
   * Drops item `index`'s outputs once an answer written in one pass is done with them, so that a large
   * answer holds less as it goes (ColBERT rows: 4 KiB a token). Its room in MAX_OUTPUT_BYTES is kept
   * until `release()`: the count stays an upper bound.
   */
  forget(index: number): void;
  /**
   * Gives the outputs' room in MAX_OUTPUT_BYTES back: call once the answer has been written or
   * abandoned. Safe to call more than once.
   */
  release(): void;
}

export interface PipelineOptions {
  readonly requestTimeoutMs: number;
  /** Most tokens one request may have, all inputs together, `<s>` and `</s>` included. */
  readonly maxRequestTokens: number;
  /** The memory answers may hold (MAX_OUTPUT_BYTES). */
  readonly outputBudget: OutputBudget;
  /** Why the engine has no heads (heads not loaded, or an engine that cannot run them), for the error. */
  readonly headsUnavailable?: string;
}

/** What the pipeline reports as it runs (metrics). */
export interface PipelineObserver {
  /** The bytes of outputs now held for answers (MAX_OUTPUT_BYTES's count), after each change. */
  onOutputBytes?(bytes: number): void;
}

const DENSE_ONLY: OutputRequest = Object.freeze({ dense: true, sparse: false, colbert: false });

/**
 * request inputs -> room reserved (queue tokens and output memory, from upper bounds) -> token sequences
 * -> exact counts checked -> scheduler -> each input's outputs. Nothing is tokenized for a request there
 * is no room for. The engine and the scheduler stay behind this class: callers see its errors
 * (`errors.ts`) and the model facts it exposes.
 */
export class EmbeddingPipeline {
  constructor(
    private readonly embedder: Embedder,
    private readonly scheduler: BatchScheduler,
    private readonly options: PipelineOptions,
  ) {}

  get contextSize(): number {
    return this.embedder.info.contextSize;
  }

  /** Length of the model's dense vectors. */
  get dimensions(): number {
    return this.embedder.info.dimensions;
  }

  /** Length of one ColBERT vector; 0 without heads. */
  get colbertDimensions(): number {
    return this.embedder.heads?.colbertDimensions ?? 0;
  }

  /** Why sparse and ColBERT outputs cannot be had; undefined when they can. */
  get headsUnavailable(): string | undefined {
    return this.embedder.heads ? undefined : (this.options.headsUnavailable ?? `the ${this.embedder.engine} engine runs no heads`);
  }

  /** Why the last hidden states cannot be had; undefined when they can (the native engine captures them with its heads). */
  get hiddenStatesUnavailable(): string | undefined {
    return this.headsUnavailable;
  }

  /** The vocabulary's entry for each id (SentencePiece's "\u2581" word marker kept). */
  tokenTexts(ids: Uint32Array): string[] {
    return this.embedder.vocabulary.texts(ids);
  }

  /**
   * Each text's tokens as the model sees them, with the span of the input each covers; without
   * `addSpecial`, no `<s>`/`</s>`. Runs the tokenizer only (off the event loop), no model: it takes no
   * room in the queue.
   */
  async tokenize(texts: readonly string[], addSpecial: boolean): Promise<TextToken[][]> {
    const sequences = await this.embedder.tokenize(texts);
    // each token becomes an object of its own: MAX_REQUEST_TOKENS bounds them as it bounds embeddings
    this.checkRequestTokens(sum(sequences.map((ids) => ids.length)));
    return sequences.map((ids, i) => {
      const kept = addSpecial ? ids : ids.subarray(1, ids.length - 1);
      return textTokens(texts[i], kept, this.embedder.vocabulary, addSpecial);
    });
  }

  /** The text each list of ids spells (Hugging Face's decoding of XLM-R's pieces); `skipSpecial` leaves out control tokens. */
  decode(ids: readonly (readonly number[])[], skipSpecial: boolean, param: string): string[] {
    this.checkRequestTokens(sum(ids.map((list) => list.length)));
    return ids.map((list, i) => {
      const name = ids.length > 1 ? `${param}[${i}]` : param;
      this.checkTokenIds(list, name);
      return decodeTokens(Uint32Array.from(list), this.embedder.vocabulary, skipSpecial);
    });
  }

  /** Every input's outputs, held (and counted in MAX_OUTPUT_BYTES) until `release()`. */
  async embed(request: EmbedRequest): Promise<EmbedResult> {
    const items = new Array<InputOutputs>(request.inputs.length);
    const { summary, reservation } = await this.run(request, request.inputs.length, (index, outputs) => (items[index] = outputs));
    return { ...summary, items, forget: (index) => (items[index] = FORGOTTEN), release: () => reservation.release() };
  }

  /**
   * Hands each input's outputs to `sink` in input order as its batch finishes and keeps none of them. The
   * caller keeps the outputs of the first `retained` inputs at most (they are counted in MAX_OUTPUT_BYTES
   * until this resolves or rejects); the others must not outlive the call to `sink`.
   */
  async embedEach(request: EmbedRequest, sink: (index: number, outputs: InputOutputs) => void, retained: number): Promise<EmbedSummary> {
    const { summary, reservation } = await this.run(request, retained, sink);
    reservation.release();
    return summary;
  }

  private async run(
    request: EmbedRequest,
    retained: number,
    sink: (index: number, outputs: InputOutputs) => void,
  ): Promise<{ summary: EmbedSummary; reservation: OutputReservation }> {
    const { inputs } = request;
    const wanted = request.outputs ?? DENSE_ONLY;
    const hidden = wanted.hidden ?? false;
    const heads: HeadRequest | undefined =
      wanted.sparse || wanted.colbert || hidden ? { sparse: wanted.sparse, colbert: wanted.colbert, hidden } : undefined;
    const unavailable = heads && this.headsUnavailable;
    if (unavailable) throw new OutputUnavailableError(wanted.sparse ? "sparse" : wanted.colbert ? "colbert" : "hidden", unavailable);
    const shape: OutputShape = {
      denseFloats: wanted.dense ? request.dimensions : 0,
      sparse: wanted.sparse,
      colbertFloats: wanted.colbert ? this.colbertDimensions : 0,
      hiddenFloats: hidden ? this.dimensions : 0,
    };
    const bounds = inputs.map((input) => this.tokenBound(input));
    // token ids count as given: a request of ids over the limit is refused before it takes any room
    const least = sum(inputs.map((input) => (input.kind === "tokens" ? Math.min(input.tokens.length, this.contextSize) : 0)));
    this.checkRequestTokens(least, "at least ");
    const retainedBytes = (lengths: readonly number[]) => sum(lengths.slice(0, retained).map((tokens) => outputBytes(tokens, shape)));
    const reservation = this.options.outputBudget.reserve(retainedBytes(bounds));
    let admission: Admission | undefined;
    try {
      // a request over MAX_REQUEST_TOKENS is refused below, so it never needs more room than that
      admission = this.admit(inputs.length, Math.min(sum(bounds), this.options.maxRequestTokens));
      const sequences = await this.toSequences(inputs);
      const fitted = sequences.map((sequence, i) => this.fit(sequence, inputs[i].param, request));
      const promptTokens = sum(fitted.map((sequence) => sequence.length));
      this.checkRequestTokens(promptTokens);
      reservation.resize(retainedBytes(fitted.map((sequence) => sequence.length)));
      const started = performance.now();
      const toItem: OutputSink = (index, outputs) => sink(index, this.itemOf(outputs, wanted, request));
      await admission
        .submit(fitted, toItem, { signal: request.signal, timeoutMs: this.options.requestTimeoutMs, heads })
        .catch((error: unknown) => {
          throw this.translate(error, inputs);
        });
      return { summary: { promptTokens, timings: { queueAndInferenceMs: performance.now() - started } }, reservation };
    } catch (error) {
      reservation.release();
      throw error;
    } finally {
      admission?.release();
    }
  }

  private admit(inputs: number, tokens: number): Admission {
    try {
      return this.scheduler.admit(inputs, tokens);
    } catch (error) {
      throw this.translate(error, []);
    }
  }

  /** The scheduler's errors as this pipeline's, which is all its callers know. */
  private translate(error: unknown, inputs: readonly EmbeddingInput[]): unknown {
    if (error instanceof QueueFullError) return new CapacityError(`the queue is full: ${error.message}`);
    if (error instanceof RequestTooLargeError) {
      // never retryable: the request alone is over a queue limit
      const setting = error.limit === "inputs" ? "MAX_QUEUE" : "MAX_QUEUE_TOKENS";
      return new InputError(
        `This request needs ${error.requested} ${error.limit} in the queue, more than it can ever hold (${setting} = ${error.allowed}). Split it into smaller requests.`,
        "input",
        "request_too_large",
      );
    }
    if (error instanceof SchedulerClosedError) return new ShuttingDownError(error.message);
    if (error instanceof SchedulerTimeoutError) return new RequestTimeoutError(error.timeoutMs);
    if (error instanceof RequestAbortedError) return new ClientGoneError(error.message);
    if (error instanceof NonFiniteVectorError) return new NonFiniteEmbeddingError(inputs[error.index]?.param ?? "input");
    return error;
  }

  /** What the request asked for of one input's outputs; the dense vector copied out of its batch's buffer. */
  private itemOf(outputs: SequenceOutputs, wanted: OutputRequest, request: EmbedRequest): InputOutputs {
    const prefix = outputs.pooled.slice(0, request.dimensions);
    return {
      dense: wanted.dense ? (request.normalize === false ? prefix : normalisePrefix(prefix)) : undefined,
      sparse: wanted.sparse ? (outputs.sparse ?? EMPTY_SPARSE) : undefined,
      colbert: wanted.colbert ? (outputs.colbert ?? EMPTY_VECTORS) : undefined,
      hidden: wanted.hidden ? withFirstRow(outputs.pooled, outputs.hidden ?? EMPTY_VECTORS) : undefined,
    };
  }

  /**
   * Most tokens an input can take in the queue, known without tokenizing: token ids as given (plus
   * `<s>`/`</s>`); a text's pieces are never empty, so at most one per UTF-16 unit, plus the leading
   * word marker and the two specials. Never more than the context (longer inputs are cut or refused).
   */
  private tokenBound(input: EmbeddingInput): number {
    const length = input.kind === "tokens" ? input.tokens.length + 2 : input.text.length + 3;
    return Math.min(length, this.contextSize);
  }

  private checkRequestTokens(tokens: number, qualifier = ""): void {
    const limit = this.options.maxRequestTokens;
    if (tokens <= limit) return;
    throw new InputError(
      `This request has ${qualifier}${tokens} tokens (<s> and </s> included), more than the ${limit} allowed per request ` +
        `(MAX_REQUEST_TOKENS). Split it into smaller requests.`,
      "input",
      "request_too_large",
    );
  }

  private async toSequences(inputs: readonly EmbeddingInput[]): Promise<Uint32Array[]> {
    const texts = inputs.flatMap((input) => (input.kind === "text" ? [input.text] : []));
    const tokenized = texts.length > 0 ? await this.embedder.tokenize(texts) : [];
    let nextText = 0;
    return inputs.map((input) => (input.kind === "text" ? tokenized[nextText++] : this.wrapTokens(input.tokens, input.param)));
  }

  /** Client-sent ids must be in the vocabulary: llama.cpp aborts the process on a bad one. */
  private checkTokenIds(tokens: readonly number[], param: string): void {
    const { nVocab } = this.embedder.info;
    tokens.forEach((id, position) => {
      if (!Number.isInteger(id) || id < 0 || id >= nVocab) {
        throw new InputError(
          `Invalid token id ${id} at position ${position} of ${param}: token ids are integers in [0, ${nVocab}).`,
          param,
          "invalid_token_id",
        );
      }
    });
  }

  /** Checks client-sent ids and adds `<s>`/`</s>` if missing. */
  private wrapTokens(tokens: readonly number[], param: string): Uint32Array {
    const { bosToken, eosToken } = this.embedder.info;
    this.checkTokenIds(tokens, param);
    const head = tokens[0] === bosToken ? [] : [bosToken];
    const tail = tokens[tokens.length - 1] === eosToken ? [] : [eosToken];
    return Uint32Array.from([...head, ...tokens, ...tail]);
  }

  /**
   * Inputs longer than the context are refused, or cut when truncation is on: at the end (`</s>` kept last)
   * or at the start (`<s>` kept first, then the input's last tokens).
   */
  private fit(sequence: Uint32Array, param: string, request: EmbedRequest): Uint32Array {
    const limit = Math.min(this.contextSize, Math.max(request.maxInputTokens ?? Infinity, 2));
    if (sequence.length <= limit) return sequence;
    if (!request.truncate) {
      const what = limit < this.contextSize ? "the request's limit" : "the model's context";
      throw new InputError(
        `${param} has ${sequence.length} tokens, more than ${what} of ${limit} tokens ` +
          `(<s> and </s> included). Shorten it or turn truncation on.`,
        param,
        "context_length_exceeded",
      );
    }
    if (request.truncateFrom === "start") {
      const cut = sequence.slice(sequence.length - limit);
      cut[0] = this.embedder.info.bosToken;
      return cut;
    }
    const cut = sequence.slice(0, limit);
    cut[limit - 1] = this.embedder.info.eosToken;
    return cut;
  }
}

const EMPTY_SPARSE: SparseWeights = Object.freeze({ indices: new Uint32Array(0), values: new Float32Array(0) });
const EMPTY_VECTORS = new Float32Array(0);

/** `first` (the pooled vector: under CLS pooling, `<s>`'s last hidden state) followed by `rows`. */
function withFirstRow(first: Float32Array, rows: Float32Array): Float32Array {
  const all = new Float32Array(first.length + rows.length);
  all.set(first);
  all.set(rows, first.length);
  return all;
}

const sum = (values: readonly number[]): number => values.reduce((total, value) => total + value, 0);
