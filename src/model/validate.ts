import { stat } from "node:fs/promises";
import { ModelError } from "./errors.js";
import { readGgufHeader } from "./gguf-header.js";

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

/**
 * Reads the GGUF header before llama.cpp ever sees the file, so that a wrong or broken file stops
 * start-up with what was found and what was expected, instead of a crash inside llama.cpp.
 */
export async function validateModelFile(file: string): Promise<ModelFacts> {
  const fileBytes = (await stat(file)).size;
  let header;
  try {
    header = readGgufHeader(file);
  } catch (error) {
    throw new ModelError(`${file} is not a readable GGUF file (${(error as Error).message}); expected a BGE-M3 GGUF`);
  }
  const { metadata } = header;
  const architecture = String(metadata.get("general.architecture") ?? "none");
  const arch = (key: string) => Number(metadata.get(`${architecture}.${key}`) ?? 0);
  const pooling = arch("pooling_type");
  const name = metadata.get("general.name");
  const facts: ModelFacts = {
    architecture,
    name: name === undefined ? undefined : String(name),
    embeddingLength: arch("embedding_length"),
    contextLength: arch("context_length"),
    poolingType: pooling,
    layers: arch("block_count"),
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
  const expectedBytes = header.dataEnd;
  if (fileBytes < expectedBytes) {
    throw new ModelError(`${file} is truncated: ${fileBytes} bytes, its header describes at least ${expectedBytes}; delete it and download again`);
  }
  return facts;
}

export function poolingName(type: number): string {
  return POOLING_NAMES[type] ?? `type ${type}`;
}
