// BGE-M3-shaped heads with seeded random weights: sparse_linear (width -> 1) and colbert_linear
// (width -> colbertWidth, by default width), scaled like torch's nn.Linear init, U(-1/sqrt(width), 1/sqrt(width)).
import path from "node:path";
import { createRng } from "../gguf/bge-m3.js";
import { HEAD_FILES } from "../../src/model/heads/heads.js";
import { writeStateDict, type HeadsDtypeName, type TensorInput } from "./state-dict-writer.js";

export interface RandomHeadsOptions {
  /** The model's hidden size, which both heads read. */
  readonly width: number;
  /** Length of one ColBERT vector (BGE-M3's is its width, 1024); default `width`. */
  readonly colbertWidth?: number;
  readonly dtype?: HeadsDtypeName;
  readonly seed?: number;
}

function linear(inputs: number, outputs: number, seed: number, stream: string): Map<string, TensorInput> {
  const next = createRng(seed, stream);
  const bound = 1 / Math.sqrt(inputs);
  const uniform = (count: number) => Float32Array.from({ length: count }, () => ((next() / 2 ** 32) * 2 - 1) * bound);
  return new Map([
    ["weight", { shape: [outputs, inputs], data: uniform(outputs * inputs) }],
    ["bias", { shape: [outputs], data: uniform(outputs) }],
  ]);
}

/** Writes `sparse_linear.pt` and `colbert_linear.pt` into `directory`; returns their paths. */
export async function writeRandomHeads(directory: string, options: RandomHeadsOptions): Promise<{ sparse: string; colbert: string }> {
  const { width, colbertWidth = width, dtype = "f16", seed = 1 } = options;
  for (const [name, value] of Object.entries({ width, colbertWidth })) {
    if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${value}`);
  }
  const sparse = path.join(directory, HEAD_FILES.sparse);
  const colbert = path.join(directory, HEAD_FILES.colbert);
  await writeStateDict(sparse, linear(width, 1, seed, "sparse_linear"), dtype);
  await writeStateDict(colbert, linear(width, colbertWidth, seed, "colbert_linear"), dtype);
  return { sparse, colbert };
}
