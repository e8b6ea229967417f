import { stat } from "node:fs/promises";
import { GgufInsights, readGgufFileInfo } from "node-llama-cpp";
import { ModelError } from "./errors.js";

export interface ModelFacts {
  readonly architecture: string;
  readonly name: string | undefined;
  readonly embeddingLength: number;
  readonly contextLength: number;
  readonly poolingType: number;
  readonly layers: number;
  readonly fileBytes: number;
}

/** llama.cpp's LLAMA_POOLING_TYPE_*: BGE-M3 is CLS (2); mean (1) and last (3) also give one vector. */
const POOLING_NAMES: Record<number, string> = { 1: "mean", 2: "cls", 3: "last" };

/** The big arrays of the tokenizer are not needed to judge the file and take most of the read time. */
const SKIPPED_KEYS = [
  "tokenizer.ggml.tokens",
  "tokenizer.ggml.scores",
  "tokenizer.ggml.token_type",
  "tokenizer.ggml.merges",
  "tokenizer.ggml.precompiled_charsmap",
];

/**
 * Reads the GGUF header before llama.cpp ever sees the file, so that a wrong or broken file stops
 * start-up with what was found and what was expected, instead of a crash inside llama.cpp.
 */
export async function validateModelFile(file: string): Promise<ModelFacts> {
  const fileBytes = (await stat(file)).size;
  let info;
  try {
    info = await readGgufFileInfo(file, { readTensorInfo: true, ignoreKeys: SKIPPED_KEYS, logWarnings: false });
  } catch (error) {
    throw new ModelError(`${file} is not a readable GGUF file (${(error as Error).message}); expected a BGE-M3 GGUF`);
  }
  const architecture = String(info.metadata.general?.architecture ?? "none");
  const arch = info.architectureMetadata as Record<string, unknown>;
  const pooling = Number(arch.pooling_type ?? 0);
  const facts: ModelFacts = {
    architecture,
    name: info.metadata.general?.name,
    embeddingLength: Number(arch.embedding_length ?? 0),
    contextLength: Number(arch.context_length ?? 0),
    poolingType: pooling,
    layers: Number(arch.block_count ?? 0),
    fileBytes,
  };
  const found = `found architecture "${architecture}", pooling ${pooling}, embedding length ${facts.embeddingLength}, context ${facts.contextLength}`;
  if (architecture !== "bert") {
    throw new ModelError(`${file} is not a BGE-M3 (XLM-RoBERTa) embedding model: ${found}; expected architecture "bert"`);
  }
  if (!POOLING_NAMES[pooling]) {
    throw new ModelError(`${file} has no usable pooling type: ${found}; expected a pooled embedding model (CLS for BGE-M3)`);
  }
  if (facts.embeddingLength <= 0 || facts.contextLength <= 0) {
    throw new ModelError(`${file} lacks its embedding or context length: ${found}`);
  }
  const expectedBytes = (info.infoEndOffset ?? 0) + (await GgufInsights.from(info)).modelSize;
  if (fileBytes < expectedBytes) {
    throw new ModelError(`${file} is truncated: ${fileBytes} bytes, its header describes at least ${expectedBytes}; delete it and download again`);
  }
  return facts;
}

export function poolingName(type: number): string {
  return POOLING_NAMES[type] ?? `type ${type}`;
}
