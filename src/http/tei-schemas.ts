import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { EmbeddingInputSchema, TokenIds } from "./schemas.js";

/**
 * text-embeddings-inference's request and answer shapes (its router/src/http/types.rs and docs/openapi.json),
 * for `/embed`, `/embed_all`, `/tokenize`, `/decode` and `/info`. Fields keep TEI's names and defaults;
 * `truncate` defaults to this server's TRUNCATE, as TEI's to its `--auto-truncate`.
 */

const nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const TruncationDirection = Type.Unsafe<"Left" | "left" | "Right" | "right">({
  type: "string",
  enum: ["Left", "left", "Right", "right"],
  description: "Which end of an input longer than the context `truncate` cuts: Right (default) keeps the start, Left keeps the end. <s> and </s> are kept.",
});

const truncate = Type.Optional(nullable(Type.Boolean({ description: "Cut inputs longer than the context instead of refusing them (default TRUNCATE)." })));
const promptName = Type.Optional(
  nullable(Type.String({ description: "A sentence-transformers prompt name. BGE-M3 defines no prompts: any name is refused (422)." })),
);

export const TeiEmbedBody = Type.Object(
  {
    inputs: EmbeddingInputSchema,
    normalize: Type.Optional(Type.Boolean({ default: true, description: "Scale to unit length (default true); false returns the pooled vector as the model gives it." })),
    truncate,
    truncation_direction: Type.Optional(TruncationDirection),
    prompt_name: promptName,
    dimensions: Type.Optional(nullable(Type.Integer({ minimum: 1, description: "Keep this many leading dimensions (normalised after cutting)." }))),
  },
  { additionalProperties: true },
);
export type TeiEmbedBodyType = Static<typeof TeiEmbedBody>;

export const TeiEmbedResponse = Type.Array(Type.Array(Type.Number()), { description: "One vector per input." });

export const TeiEmbedAllBody = Type.Object(
  { inputs: EmbeddingInputSchema, truncate, truncation_direction: Type.Optional(TruncationDirection), prompt_name: promptName },
  { additionalProperties: true },
);
export type TeiEmbedAllBodyType = Static<typeof TeiEmbedAllBody>;

export const TeiEmbedAllResponse = Type.Array(Type.Array(Type.Array(Type.Number())), {
  description: "Per input, the encoder's last hidden state of every token, <s> and </s> included (not normalised).",
});

export const TeiTokenizeBody = Type.Object(
  {
    inputs: Type.Union([Type.String(), Type.Array(Type.String())], { description: "Text(s) to tokenize." }),
    add_special_tokens: Type.Optional(Type.Boolean({ default: true, description: "Include <s> and </s> (default true)." })),
    prompt_name: promptName,
  },
  { additionalProperties: true },
);
export type TeiTokenizeBodyType = Static<typeof TeiTokenizeBody>;

export const TeiTokenizeResponse = Type.Array(
  Type.Array(
    Type.Object({
      id: Type.Integer(),
      text: Type.String({ description: "The input's text the token covers (the token itself for <s> and </s>)." }),
      special: Type.Boolean({ description: "<s> or </s> added around the input." }),
      start: Type.Union([Type.Integer(), Type.Null()], { description: "UTF-8 byte offset in the input; null for <s>, </s> and tokens the tokenizer's normalisation made unalignable." }),
      stop: Type.Union([Type.Integer(), Type.Null()]),
    }),
  ),
);

export const TeiDecodeBody = Type.Object(
  {
    ids: Type.Union([TokenIds, Type.Array(TokenIds)], { description: "Token ids, or a list of them." }),
    skip_special_tokens: Type.Optional(Type.Boolean({ default: true, description: "Leave out <s>, </s>, <pad>, <unk> and <mask> (default true)." })),
  },
  { additionalProperties: true },
);
export type TeiDecodeBodyType = Static<typeof TeiDecodeBody>;

export const TeiDecodeResponse = Type.Array(Type.String());

export const TeiInfoResponse = Type.Object({
  model_id: Type.String(),
  model_sha: Type.Null(),
  model_dtype: Type.String({ description: "gguf: the weights' types are the GGUF file's own." }),
  model_type: Type.Object({ embedding: Type.Object({ pooling: Type.String() }) }),
  max_concurrent_requests: Type.Integer({ description: "MAX_QUEUE: inputs that may wait." }),
  max_input_length: Type.Integer({ description: "Most tokens per input, <s> and </s> included." }),
  max_batch_tokens: Type.Integer(),
  max_batch_requests: Type.Integer(),
  max_client_batch_size: Type.Integer({ description: "MAX_INPUTS." }),
  auto_truncate: Type.Boolean(),
  tokenization_workers: Type.Integer(),
  version: Type.String(),
  sha: Type.Null(),
  docker_label: Type.Null(),
});
