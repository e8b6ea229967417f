import { NonFiniteVectorError, type BatchScheduler } from "../engine/scheduler.js";
import type { Embedder, HeadRequest, SparseWeights } from "../engine/types.js";
import { InputError, NonFiniteEmbeddingError, OutputUnavailableError } from "./errors.js";
import { normalisePrefix } from "./vector.js";

export type EmbeddingInput =
  | { readonly kind: "text"; readonly text: string; readonly param: string }
  | { readonly kind: "tokens"; readonly tokens: readonly number[]; readonly param: string };

export interface EmbedRequest {
  readonly inputs: readonly EmbeddingInput[];
  readonly truncate: boolean;
  /** Length of the returned vectors: a prefix, renormalised. */
  readonly dimensions: number;
  /** BGE-M3's sparse and ColBERT outputs, from the same forward pass as the vectors. */
  readonly heads?: HeadRequest;
  readonly signal?: AbortSignal;
}

export interface EmbedResult {
  /** Unit-length vectors in input order. */
  readonly vectors: Float32Array[];
  /** When asked for: each input's sparse lexical weights. */
  readonly sparse?: SparseWeights[];
  /** When asked for: each input's ColBERT vectors (unit length, one per token after `<s>`), packed. */
  readonly colbert?: Float32Array[];
  /** Every token the model saw, `<s>` and `</s>` included. */
  readonly promptTokens: number;
  readonly timings: { readonly queueAndInferenceMs: number };
}

export interface PipelineOptions {
  readonly requestTimeoutMs: number;
  /** Most tokens one request may have, all inputs together, `<s>` and `</s>` included. */
  readonly maxRequestTokens: number;
  /** Why the engine has no heads (heads not loaded, or an engine that cannot run them), for the error. */
  readonly headsUnavailable?: string;
}

/**
 * request inputs -> queue room reserved (from an upper bound of the tokens) -> token sequences ->
 * scheduler -> unit vectors. Nothing is tokenized for a request the queue has no room for.
 */
export class EmbeddingPipeline {
  constructor(
    readonly embedder: Embedder,
    private readonly scheduler: BatchScheduler,
    private readonly options: PipelineOptions,
  ) {}

  get contextSize(): number {
    return this.embedder.info.contextSize;
  }

  /** Why sparse and ColBERT outputs cannot be had; undefined when they can. */
  get headsUnavailable(): string | undefined {
    return this.embedder.heads ? undefined : (this.options.headsUnavailable ?? `the ${this.embedder.engine} engine runs no heads`);
  }

  async embed(request: EmbedRequest): Promise<EmbedResult> {
    const { inputs } = request;
    const heads = request.heads?.sparse || request.heads?.colbert ? request.heads : undefined;
    const unavailable = heads && this.headsUnavailable;
    if (unavailable) throw new OutputUnavailableError(heads.sparse ? "sparse" : "colbert", unavailable);
    const bounds = inputs.map((input) => this.tokenBound(input));
    // token ids count as given: a request of ids over the limit is refused before it takes any room
    const least = sum(inputs.map((input) => (input.kind === "tokens" ? Math.min(input.tokens.length, this.contextSize) : 0)));
    this.checkRequestTokens(least, "at least ");
    // a request over MAX_REQUEST_TOKENS is refused below, so it never needs more room than that
    const admission = this.scheduler.admit(inputs.length, Math.min(sum(bounds), this.options.maxRequestTokens));
    try {
      const sequences = await this.toSequences(inputs);
      const fitted = sequences.map((sequence, i) => this.fit(sequence, inputs[i].param, request.truncate));
      const promptTokens = sum(fitted.map((sequence) => sequence.length));
      this.checkRequestTokens(promptTokens);
      const started = performance.now();
      const outputs = await admission
        .submit(fitted, { signal: request.signal, timeoutMs: this.options.requestTimeoutMs, heads })
        .catch((error: unknown) => {
          throw error instanceof NonFiniteVectorError ? new NonFiniteEmbeddingError(inputs[error.index].param) : error;
        });
      return {
        vectors: outputs.map((output) => normalisePrefix(output.pooled, request.dimensions)),
        sparse: heads?.sparse ? outputs.map((output) => output.sparse ?? EMPTY_SPARSE) : undefined,
        colbert: heads?.colbert ? outputs.map((output) => output.colbert ?? EMPTY_VECTORS) : undefined,
        promptTokens,
        timings: { queueAndInferenceMs: performance.now() - started },
      };
    } finally {
      admission.release();
    }
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

  /** Checks client-sent ids (llama.cpp aborts the process on a bad one) and adds `<s>`/`</s>` if missing. */
  private wrapTokens(tokens: readonly number[], param: string): Uint32Array {
    const { nVocab, bosToken, eosToken } = this.embedder.info;
    tokens.forEach((id, position) => {
      if (!Number.isInteger(id) || id < 0 || id >= nVocab) {
        throw new InputError(
          `Invalid token id ${id} at position ${position} of ${param}: token ids are integers in [0, ${nVocab}).`,
          param,
          "invalid_token_id",
        );
      }
    });
    const head = tokens[0] === bosToken ? [] : [bosToken];
    const tail = tokens[tokens.length - 1] === eosToken ? [] : [eosToken];
    return Uint32Array.from([...head, ...tokens, ...tail]);
  }

  /** Inputs longer than the context are refused, or cut with `</s>` kept last when truncation is on. */
  private fit(sequence: Uint32Array, param: string, truncate: boolean): Uint32Array {
    const limit = this.contextSize;
    if (sequence.length <= limit) return sequence;
    if (!truncate) {
      throw new InputError(
        `${param} has ${sequence.length} tokens, more than the model's context of ${limit} tokens ` +
          `(<s> and </s> included). Shorten it or send "truncate": true.`,
        param,
        "context_length_exceeded",
      );
    }
    const cut = sequence.slice(0, limit);
    cut[limit - 1] = this.embedder.info.eosToken;
    return cut;
  }
}

const EMPTY_SPARSE: SparseWeights = Object.freeze({ indices: new Uint32Array(0), values: new Float32Array(0) });
const EMPTY_VECTORS = new Float32Array(0);

const sum = (values: readonly number[]): number => values.reduce((total, value) => total + value, 0);
