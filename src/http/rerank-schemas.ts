import { Type, type Static } from "@sinclair/typebox";
import { TruncationDirection } from "./tei-schemas.js";

/**
 * Shapes of the sparse and rerank routes that follow other servers' APIs: text-embeddings-inference's
 * `/embed_sparse` and `/rerank` (`texts`), and the `documents` shape shared by Cohere v2, Jina and
 * llama.cpp's server.
 */

export const EmbedSparseBody = Type.Object(
  {
    inputs: Type.Union([Type.String(), Type.Array(Type.String())], { description: "Text(s) to embed." }),
    truncate: Type.Optional(Type.Union([Type.Boolean(), Type.Null()], { description: "Cut inputs longer than the context instead of refusing them (default TRUNCATE)." })),
    truncation_direction: Type.Optional(TruncationDirection),
  },
  { additionalProperties: true },
);
export type EmbedSparseBodyType = Static<typeof EmbedSparseBody>;

export const EmbedSparseResponse = Type.Array(Type.Array(Type.Object({ index: Type.Integer(), value: Type.Number() })), {
  description: "Per input, its token ids (ascending) with their weights.",
});

const DocumentSchema = Type.Union([Type.String(), Type.Object({ text: Type.String() }, { additionalProperties: true })]);

export const RerankBody = Type.Object(
  {
    query: Type.String({ description: "The query documents are scored against." }),
    documents: Type.Optional(Type.Array(DocumentSchema, { description: "Cohere / Jina / llama.cpp: strings or {text}." })),
    texts: Type.Optional(Type.Array(Type.String(), { description: "text-embeddings-inference: strings (answered in its shape)." })),
    top_n: Type.Optional(Type.Integer({ minimum: 1, description: "Return only the best n (default all)." })),
    return_documents: Type.Optional(Type.Boolean({ description: "Include each document's text (documents shape)." })),
    return_text: Type.Optional(Type.Boolean({ description: "Include each text (TEI shape)." })),
    raw_scores: Type.Optional(Type.Boolean({ description: "TEI: accepted; scores are never passed through a sigmoid." })),
    truncate: Type.Optional(Type.Union([Type.Boolean(), Type.Null()], { description: "Cut inputs longer than the context instead of refusing them (default TRUNCATE)." })),
    truncation_direction: Type.Optional(TruncationDirection),
    model: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: "Echoed back." })),
    mode: Type.Optional(
      Type.Unsafe<"dense" | "sparse" | "colbert" | "hybrid">({
        type: "string",
        enum: ["dense", "sparse", "colbert", "hybrid"],
        description: "Extension: the score used (default hybrid where the heads are loaded, dense otherwise).",
      }),
    ),
    weights: Type.Optional(
      Type.Object(
        {
          dense: Type.Optional(Type.Number({ minimum: 0 })),
          sparse: Type.Optional(Type.Number({ minimum: 0 })),
          colbert: Type.Optional(Type.Number({ minimum: 0 })),
        },
        { additionalProperties: false, description: "Extension: hybrid weights (default dense 0.4, sparse 0.2, colbert 0.4)." },
      ),
    ),
  },
  { additionalProperties: true },
);
export type RerankBodyType = Static<typeof RerankBody>;

export const RerankResponse = Type.Union([
  Type.Object({
    id: Type.String(),
    object: Type.Literal("list"),
    model: Type.String(),
    results: Type.Array(
      Type.Object({
        index: Type.Integer(),
        relevance_score: Type.Number(),
        document: Type.Optional(Type.Object({ text: Type.String() })),
      }),
    ),
    usage: Type.Object({ prompt_tokens: Type.Integer(), total_tokens: Type.Integer() }),
  }),
  Type.Array(Type.Object({ index: Type.Integer(), score: Type.Number(), text: Type.Optional(Type.String()) })),
]);
