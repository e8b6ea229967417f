import { Type, type Static } from "@sinclair/typebox";
import { DEFAULT_M3_HEADS, DEFAULT_MODEL_URI } from "../model/defaults.js";

export { DEFAULT_M3_HEADS, DEFAULT_MODEL_URI };

/**
 * Every setting the server reads, in one schema. Each property is set by the environment variable
 * named like it in SCREAMING_SNAKE_CASE (`routePrefix` -> `ROUTE_PREFIX`) or by the CLI flag in
 * kebab-case (`--route-prefix`); `cli` adds a short alias. Environment names are the seed project's.
 */
export const configSchema = Type.Object({
  host: Type.String({ default: "0.0.0.0", description: "Address to listen on." }),
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 8000, description: "Port to listen on." }),
  routePrefix: Type.String({
    default: "",
    pattern: "^(/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*/?$",
    description: "Path every route is served under, e.g. /api.",
  }),
  apiKey: Type.String({
    default: "",
    description: "Bearer key(s) required on every route but /health; comma-separated; empty means open.",
  }),
  device: Type.Union([Type.Literal("cpu"), Type.Literal("cuda"), Type.Literal("auto")], {
    default: "auto",
    description: "cpu, cuda (all layers on the GPU; fails if none is usable) or auto (GPU when usable).",
  }),
  engine: Type.Union([Type.Literal("auto"), Type.Literal("native"), Type.Literal("node-llama-cpp")], {
    default: "auto",
    description: "Inference engine: auto prefers the native addon when it is built.",
  }),
  embeddingModel: Type.String({
    minLength: 1,
    default: DEFAULT_MODEL_URI,
    cli: "model",
    description:
      "Local GGUF path, hf: URI or https URL of a GGUF file; BAAI/bge-m3 means the default (other Hugging Face ids and model folders need converting to GGUF).",
  }),
  modelDir: Type.String({ minLength: 1, default: "models", description: "Where models are downloaded to." }),
  m3Heads: Type.String({
    minLength: 1,
    default: DEFAULT_M3_HEADS,
    description:
      "BGE-M3's sparse and ColBERT heads (sparse_linear.pt, colbert_linear.pt): hf:<owner>/<repo>[/<folder>] (downloaded once into MODEL_DIR), a local directory holding both, or none; without them dense embeddings still work.",
  }),
  hfEndpoint: Type.String({
    default: "",
    pattern: "^(https?://[^\\s]+)?$",
    description: "A Hugging Face mirror (http(s) URL) for hf: downloads of the model and M3_HEADS; empty means https://huggingface.co.",
  }),
  hfToken: Type.String({
    default: "",
    description: "Hugging Face access token sent with hf: downloads (gated or private repositories); empty sends none.",
  }),
  hfHubOffline: Type.Boolean({
    default: false,
    description:
      "Never touch the network (the Hugging Face tools' variable): use the model and M3_HEADS files already in MODEL_DIR, or stop naming the missing file.",
  }),
  downloadTimeoutMs: Type.Integer({
    minimum: 0,
    default: 300_000,
    description:
      "Give up a download after this long without a byte arriving, retries included: the server exits 1 (the heads become unavailable); 0 = keep trying.",
  }),
  downloadStallTimeoutMs: Type.Integer({
    minimum: 100,
    default: 30_000,
    description: "A download attempt that gets no data for this long (connecting, waiting for an answer, between chunks) is dropped and retried.",
  }),
  threads: Type.Integer({
    minimum: 0,
    maximum: 1024,
    default: 0,
    description: "CPU threads; 0 = one per physical core, within the container's CPU quota (cgroup v2 cpu.max).",
  }),
  attentionPrecision: Type.Union([Type.Literal("auto"), Type.Literal("f32"), Type.Literal("int16"), Type.Literal("bf16")], {
    default: "auto",
    description:
      "What attention's two products run on (softmax stays f32). auto: int16 or bf16, whichever the CPU build has, where " +
      "the model's weights are quantised (Q8_0, K-quants: their own rounding is ~10x what either adds), f32 for F16/F32 " +
      "files and elsewhere. f32: exact. int16: 16-bit integers, ~1.5x faster attention on long inputs, native engine on " +
      "CPUs with AVX2 and no AVX-512. bf16: BF16 operands, native engine on CPUs with AVX512-BF16. Where the one asked " +
      "for is missing, f32 runs (logged). Inputs under 512 tokens always keep f32's exact attention. /health and the " +
      "start-up log say which runs.",
  }),
  contextSize: Type.Integer({
    minimum: 16,
    maximum: 8192,
    default: 8192,
    description: "Most tokens one input may have, <s> and </s> included.",
  }),
  truncate: Type.Boolean({ default: false, description: "Cut over-long inputs instead of answering 400." }),
  maxInputs: Type.Integer({ minimum: 1, maximum: 2048, default: 2048, description: "Most inputs per request." }),
  bodyLimit: Type.Integer({
    minimum: 1024,
    default: 64 * 1024 * 1024,
    description: "Largest request body in bytes.",
  }),
  maxBatchTokens: Type.Integer({
    minimum: 16,
    maximum: 65536,
    // Inputs packed in one batch attend over the whole batch (masked), so on a CPU the quadratic waste
    // outgrows the gain past a few hundred tokens: 512 measured best of 512/2048.
    default: 512,
    description: "Token budget of one batch of inputs (a longer input runs alone). Native engine only: node-llama-cpp runs one input at a time.",
  }),
  maxBatchSequences: Type.Integer({ minimum: 1, maximum: 1024, default: 64, description: "Most inputs per batch (native engine only)." }),
  maxRerankDocuments: Type.Integer({
    minimum: 1,
    default: 1000,
    description: "Most documents one rerank request may score; never more than MAX_INPUTS - 1 (the query is one more input).",
  }),
  maxRequestTokens: Type.Integer({
    minimum: 16,
    // OpenAI's cap on the tokens of one embeddings request
    default: 300_000,
    description: "Most tokens one request may have (all inputs, <s> and </s> included); beyond it 400.",
  }),
  maxQueue: Type.Integer({
    minimum: 1,
    default: 8192,
    description: "Most inputs waiting; a request that does not fit now gets 503 + Retry-After. At least MAX_INPUTS.",
  }),
  maxQueueTokens: Type.Integer({
    minimum: 16,
    default: 1_048_576,
    description:
      "Most tokens waiting; a request that does not fit now gets 503 + Retry-After. " +
      "At least min(MAX_REQUEST_TOKENS, MAX_INPUTS x CONTEXT_SIZE).",
  }),
  maxOutputBytes: Type.Integer({
    minimum: 1024 * 1024,
    // 64 MiB: what a 1 GiB container has left beside the model and one 8,192-token input (docs/memory.md);
    // ColBERT vectors of ~16,000 tokens, or 2,048 dense vectors 8 times over
    default: 64 * 1024 * 1024,
    description:
      "Most bytes of outputs (vectors, sparse weights, ColBERT vectors) held at once for answers being computed or written, " +
      "all requests together; counted before a request runs. A request whose outputs alone are larger gets 400; one that " +
      "does not fit now gets 503 + Retry-After. ColBERT vectors take 4 KiB per token.",
  }),
  requestTimeoutMs: Type.Integer({
    minimum: 0,
    default: 300_000,
    description:
      "A request still waiting after this long gets a 504, and a streamed answer whose client reads nothing for this long is abandoned; 0 = never.",
  }),
  shutdownTimeoutMs: Type.Integer({
    minimum: 0,
    default: 30_000,
    description: "On SIGTERM/SIGINT: stop accepting, finish accepted work, exit 0 within this; past it exit 1. 0 = no deadline.",
  }),
  maxEventLoopDelayMs: Type.Integer({
    minimum: 0,
    default: 2000,
    description: "Answer 503 while the event loop lags more than this; 0 = never.",
  }),
  metricsPublic: Type.Boolean({ default: false, description: "Serve /metrics without the API key." }),
  docsPublic: Type.Boolean({ default: false, description: "Serve /docs (the OpenAPI description) without the API key." }),
  logLevel: Type.Union(
    ["fatal", "error", "warn", "info", "debug", "trace", "silent"].map((level) => Type.Literal(level)),
    { default: "info", description: "Log level." },
  ),
  servedModelName: Type.String({ minLength: 1, default: "bge-m3", description: "Model name in responses." }),
  corsOrigins: Type.String({
    default: "*",
    description: "Allowed CORS origins, comma-separated; * allows any.",
  }),
});

export type RawConfig = Static<typeof configSchema>;
