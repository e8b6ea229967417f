import { Type, type Static } from "@sinclair/typebox";

/** Shapes of the API, used both to validate requests and to describe them in the OpenAPI document. */

const nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()]);

export const TokenIds = Type.Array(Type.Integer(), { description: "Token ids of one input." });

export const EmbeddingInputSchema = Type.Union(
  [
    Type.String({ description: "One text." }),
    Type.Array(Type.String(), { description: "Several texts." }),
    TokenIds,
    Type.Array(TokenIds, { description: "Several tokenised inputs." }),
  ],
  { description: "Text(s) or token ids to embed; every item non-empty." },
);

export const EmbeddingsBody = Type.Object(
  {
    input: EmbeddingInputSchema,
    model: Type.Optional(nullable(Type.String({ description: "Echoed back; any name is accepted." }))),
    encoding_format: Type.Optional(
      Type.Unsafe<"float" | "base64" | null>({
        type: ["string", "null"],
        enum: ["float", "base64", null],
        description: "float (default) or base64 of little-endian float32.",
      }),
    ),
    dimensions: Type.Optional(
      Type.Union([Type.Integer({ minimum: 1, description: "Length of the returned vectors." }), Type.Null()]),
    ),
    user: Type.Optional(nullable(Type.String())),
    truncate: Type.Optional(
      Type.Boolean({ description: "Cut inputs longer than the context instead of answering 400." }),
    ),
    return_dense: Type.Optional(
      Type.Boolean({ description: "Extension: the dense vector as `embedding` (default true; false omits it)." }),
    ),
    return_sparse: Type.Optional(
      Type.Boolean({
        description: "Extension: BGE-M3's sparse lexical weights as `sparse_embedding` {indices, values} (token ids; default false).",
      }),
    ),
    return_colbert_vecs: Type.Optional(
      Type.Boolean({
        description:
          "Extension: BGE-M3's ColBERT vectors as `colbert_embedding`, one unit vector per token after <s> (</s> included), in `encoding_format` (default false).",
      }),
    ),
    return_sparse_tokens: Type.Optional(
      Type.Boolean({ description: "Extension: add the vocabulary entry of each sparse index as `sparse_embedding.tokens`." }),
    ),
  },
  { additionalProperties: true },
);
export type EmbeddingsBodyType = Static<typeof EmbeddingsBody>;

export const SparseEmbedding = Type.Object({
  indices: Type.Array(Type.Integer(), { description: "Token ids, ascending." }),
  values: Type.Array(Type.Number(), { description: "Each id's weight (> 0)." }),
  tokens: Type.Optional(Type.Array(Type.String(), { description: "Each id's vocabulary entry (return_sparse_tokens)." })),
});

export const ErrorSchema = Type.Object(
  {
    error: Type.Object({
      message: Type.String(),
      type: Type.String(),
      param: Type.Union([Type.String(), Type.Null()]),
      code: Type.Union([Type.String(), Type.Null()]),
    }),
  },
  { description: "OpenAI-shaped error." },
);

export const EmbeddingsResponse = Type.Object({
  object: Type.Literal("list"),
  data: Type.Array(
    Type.Object({
      object: Type.Literal("embedding"),
      index: Type.Integer(),
      embedding: Type.Optional(Type.Union([Type.Array(Type.Number()), Type.String()])),
      sparse_embedding: Type.Optional(SparseEmbedding),
      colbert_embedding: Type.Optional(Type.Array(Type.Union([Type.Array(Type.Number()), Type.String()]))),
    }),
  ),
  model: Type.String(),
  usage: Type.Object({ prompt_tokens: Type.Integer(), total_tokens: Type.Integer() }),
});

export const ModelObject = Type.Object({
  id: Type.String(),
  object: Type.Literal("model"),
  created: Type.Integer(),
  owned_by: Type.String(),
});

export const ModelList = Type.Object({ object: Type.Literal("list"), data: Type.Array(ModelObject) });

export const HealthResponse = Type.Object({
  status: Type.String(),
  model: Type.String(),
  engine: Type.String(),
  device: Type.String(),
  outputs: Type.Array(Type.String(), { description: "What /v1/embeddings can return: dense, and sparse + colbert when the heads are loaded." }),
  heads_unavailable: Type.Optional(Type.String({ description: "Why sparse and ColBERT outputs are unavailable." })),
});
