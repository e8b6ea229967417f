import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { HeadsError } from "./errors.js";
import { readStateDict, type StateDict, type Tensor } from "./state-dict.js";
import type { M3Heads } from "./types.js";

/** The file names BGE-M3's repository ships its heads under. */
export const HEAD_FILES = { sparse: "sparse_linear.pt", colbert: "colbert_linear.pt" } as const;

/**
 * Largest heads file read (bytes): a ColBERT head for a 4096-wide model in fp32 is 64 MiB; this
 * bounds the memory a wrong path (a model file, say) can take before it is refused.
 */
const MAX_FILE_BYTES = 256 * 1024 * 1024;

const shapeText = (shape: readonly number[]): string => `[${shape.join(", ")}]`;

/** The `weight` and `bias` of a Linear layer's state dict, refusing any other key. */
function linear(file: string, dict: StateDict): { weight: Tensor; bias: Tensor } {
  const keys = [...dict.keys()].sort();
  const weight = dict.get("weight");
  const bias = dict.get("bias");
  if (!weight || !bias || keys.length !== 2) {
    throw new HeadsError(`${file}: expected the state dict of a Linear layer (weight, bias), found keys ${keys.join(", ") || "none"}`);
  }
  return { weight, bias };
}

/**
 * Checks the shapes of the two heads against each other (and the model's width when given) and
 * returns them as M3Heads. `sparseFile` and `colbertFile` name the files in errors.
 */
export function headsFromStateDicts(
  sparseFile: string,
  sparseDict: StateDict,
  colbertFile: string,
  colbertDict: StateDict,
  expectedHiddenSize?: number,
): M3Heads {
  const sparse = linear(sparseFile, sparseDict);
  const colbert = linear(colbertFile, colbertDict);
  const [rows, hiddenSize] = sparse.weight.shape;
  if (sparse.weight.shape.length !== 2 || rows !== 1 || hiddenSize === 0) {
    throw new HeadsError(`${sparseFile}: weight has shape ${shapeText(sparse.weight.shape)}, expected [1, hidden size]`);
  }
  if (expectedHiddenSize !== undefined && hiddenSize !== expectedHiddenSize) {
    throw new HeadsError(`${sparseFile}: weight has shape ${shapeText(sparse.weight.shape)}, expected [1, ${expectedHiddenSize}] (the model's hidden size)`);
  }
  if (shapeText(sparse.bias.shape) !== "[1]") {
    throw new HeadsError(`${sparseFile}: bias has shape ${shapeText(sparse.bias.shape)}, expected [1]`);
  }
  const [outputSize, inputSize] = colbert.weight.shape;
  if (colbert.weight.shape.length !== 2 || inputSize !== hiddenSize || outputSize === 0) {
    throw new HeadsError(`${colbertFile}: weight has shape ${shapeText(colbert.weight.shape)}, expected [output size, ${hiddenSize}]`);
  }
  if (shapeText(colbert.bias.shape) !== `[${outputSize}]`) {
    throw new HeadsError(`${colbertFile}: bias has shape ${shapeText(colbert.bias.shape)}, expected [${outputSize}]`);
  }
  return {
    hiddenSize,
    sparse: { weight: sparse.weight.data, bias: sparse.bias.data[0] },
    colbert: { weight: colbert.weight.data, bias: colbert.bias.data, outputSize },
  };
}

/** Reads one heads file, at most MAX_FILE_BYTES; errors start with the file's path. */
export async function readStateDictFile(file: string): Promise<StateDict> {
  let bytes: Buffer;
  try {
    const { size } = await stat(file);
    if (size > MAX_FILE_BYTES) throw new HeadsError(`${file}: ${size} bytes is more than a heads file holds (at most ${MAX_FILE_BYTES})`);
    bytes = await readFile(file);
  } catch (error) {
    if (error instanceof HeadsError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new HeadsError(code === "ENOENT" ? `${file} not found` : `cannot read ${file}: ${(error as Error).message}`);
  }
  try {
    return readStateDict(bytes);
  } catch (error) {
    if (error instanceof HeadsError) throw new HeadsError(`${file}: ${error.message}`);
    throw error;
  }
}

/** Reads `sparse_linear.pt` and `colbert_linear.pt` from a folder and checks their shapes. */
export async function readHeadsDirectory(directory: string, expectedHiddenSize?: number): Promise<M3Heads> {
  const sparseFile = path.join(directory, HEAD_FILES.sparse);
  const colbertFile = path.join(directory, HEAD_FILES.colbert);
  const [sparse, colbert] = await Promise.all([readStateDictFile(sparseFile), readStateDictFile(colbertFile)]);
  return headsFromStateDicts(sparseFile, sparse, colbertFile, colbert, expectedHiddenSize);
}
