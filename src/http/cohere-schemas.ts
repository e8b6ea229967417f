import { Type, type Static } from "@sinclair/typebox";

/**
 * Cohere's embed and rerank shapes (its API reference and the `cohere-ai` client's types): `/v1/embed`,
 * `/v2/embed`, `/v2/rerank`. `model` is echoed nowhere and any name is accepted; image inputs are refused
 * (BGE-M3 reads text only).
 */

export const EMBEDDING_TYPES = ["float", "int8", "uint8", "binary", "ubinary", "base64"] as const;
export type EmbeddingType = (typeof EMBEDDING_TYPES)[number];

const enumOf = <T extends string>(values: readonly T[], description: string) =>
  Type.Unsafe<T>({ type: "string", enum: [...values], description });

const InputType = enumOf(
  ["search_document", "search_query", "classification", "clustering", "image"],
  "Accepted and ignored: BGE-M3 embeds queries and documents alike, without prefixes. image is refused.",
);

const EmbeddingTypes = Type.Array(
  enumOf(EMBEDDING_TYPES, "float; int8 and uint8 (each vector scaled by its largest component); binary and ubinary (sign bits, 8 per byte); base64 (little-endian float32)."),
  { minItems: 1, description: "Default float." },
);

const Truncate = enumOf(
  ["NONE", "START", "END"],
  "Inputs longer than the context: END (default) cuts the end, START the start, NONE refuses them (400).",
);

const Texts = Type.Array(Type.String(), { description: "The texts to embed." });
const Images = Type.Array(Type.String(), { description: "Refused: BGE-M3 embeds text only." });

export const CohereEmbedV2Body = Type.Object(
  {
    model: Type.Optional(Type.String()),
    input_type: Type.Optional(InputType),
    texts: Type.Optional(Texts),
    images: Type.Optional(Images),
    inputs: Type.Optional(
      Type.Array(
        Type.Object(
          {
            content: Type.Array(
              Type.Object(
                { type: Type.String({ description: "text (image_url is refused)" }), text: Type.Optional(Type.String()) },
                { additionalProperties: true },
              ),
              { minItems: 1 },
            ),
          },
          { additionalProperties: true },
        ),
        { description: "Inputs of text parts; an input's parts are joined with a space." },
      ),
    ),
    embedding_types: Type.Optional(EmbeddingTypes),
    output_dimension: Type.Optional(Type.Integer({ minimum: 1, description: "Keep this many leading dimensions (renormalised)." })),
    max_tokens: Type.Optional(Type.Integer({ minimum: 2, description: "Most tokens per input (<s> and </s> included), cut as `truncate` says." })),
    truncate: Type.Optional(Truncate),
    priority: Type.Optional(Type.Integer({ description: "Accepted and ignored: requests are served in arrival order." })),
  },
  { additionalProperties: true },
);
export type CohereEmbedV2BodyType = Static<typeof CohereEmbedV2Body>;

export const CohereEmbedV1Body = Type.Object(
  {
    texts: Type.Optional(Texts),
    images: Type.Optional(Images),
    model: Type.Optional(Type.String()),
    input_type: Type.Optional(InputType),
    embedding_types: Type.Optional(EmbeddingTypes),
    truncate: Type.Optional(Truncate),
  },
  { additionalProperties: true },
);
export type CohereEmbedV1BodyType = Static<typeof CohereEmbedV1Body>;

const Vectors = Type.Array(Type.Array(Type.Number()));
const Meta = Type.Object({
  api_version: Type.Object({ version: Type.String() }),
  billed_units: Type.Object({ input_tokens: Type.Integer({ description: "Tokens the model saw, <s> and </s> included. Nothing is billed." }) }),
});
const EmbeddingsByType = Type.Object({
  float: Type.Optional(Vectors),
  int8: Type.Optional(Vectors),
  uint8: Type.Optional(Vectors),
  binary: Type.Optional(Vectors),
  ubinary: Type.Optional(Vectors),
  base64: Type.Optional(Type.Array(Type.String())),
});

export const CohereEmbedResponse = Type.Object({
  id: Type.String(),
  response_type: Type.Union([Type.Literal("embeddings_by_type"), Type.Literal("embeddings_floats")], {
    description: "embeddings_floats (v1 without embedding_types): `embeddings` is a list of float vectors.",
  }),
  embeddings: Type.Union([EmbeddingsByType, Vectors]),
  texts: Type.Array(Type.String()),
  meta: Meta,
});

export const CohereRerankBody = Type.Object(
  {
    model: Type.Optional(Type.String()),
    query: Type.String(),
    documents: Type.Array(Type.Union([Type.String(), Type.Object({ text: Type.String() }, { additionalProperties: true })])),
    top_n: Type.Optional(Type.Integer({ minimum: 1 })),
    max_tokens_per_doc: Type.Optional(Type.Integer({ minimum: 2, description: "Most tokens per input (<s> and </s> included); longer ones are cut at the end." })),
    priority: Type.Optional(Type.Integer({ description: "Accepted and ignored." })),
  },
  { additionalProperties: true },
);
export type CohereRerankBodyType = Static<typeof CohereRerankBody>;

export const CohereRerankResponse = Type.Object({
  id: Type.String(),
  results: Type.Array(Type.Object({ index: Type.Integer(), relevance_score: Type.Number() })),
  meta: Meta,
});
