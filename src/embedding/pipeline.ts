import type { BatchScheduler } from "../engine/scheduler.js";
import type { Embedder } from "../engine/types.js";
import { InputError } from "./errors.js";
import { normalisePrefix } from "./vector.js";

export type EmbeddingInput =
  | { readonly kind: "text"; readonly text: string; readonly param: string }
  | { readonly kind: "tokens"; readonly tokens: readonly number[]; readonly param: string };

export interface EmbedRequest {
  readonly inputs: readonly EmbeddingInput[];
  readonly truncate: boolean;
  /** Length of the returned vectors: a prefix, renormalised. */
  readonly dimensions: number;
  readonly signal?: AbortSignal;
}

export interface EmbedResult {
  /** Unit-length vectors in input order. */
  readonly vectors: Float32Array[];
  /** Every token the model saw, `<s>` and `</s>` included. */
  readonly promptTokens: number;
  readonly timings: { readonly queueAndInferenceMs: number };
}

export interface PipelineOptions {
  readonly requestTimeoutMs: number;
}

/** request inputs -> token sequences -> scheduler -> unit vectors. */
export class EmbeddingPipeline {
  constructor(
    readonly embedder: Embedder,
    private readonly scheduler: BatchScheduler,
    private readonly options: PipelineOptions,
  ) {}

  get contextSize(): number {
    return this.embedder.info.contextSize;
  }

  async embed(request: EmbedRequest): Promise<EmbedResult> {
    const sequences = await this.toSequences(request.inputs);
    const fitted = sequences.map((sequence, i) => this.fit(sequence, request.inputs[i].param, request.truncate));
    const started = performance.now();
    const raw = await this.scheduler.submit(fitted, {
      signal: request.signal,
      timeoutMs: this.options.requestTimeoutMs,
    });
    return {
      vectors: raw.map((vector) => normalisePrefix(vector, request.dimensions)),
      promptTokens: fitted.reduce((sum, sequence) => sum + sequence.length, 0),
      timings: { queueAndInferenceMs: performance.now() - started },
    };
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
