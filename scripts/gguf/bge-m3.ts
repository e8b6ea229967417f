// Writes a BGE-M3-shaped XLM-RoBERTa encoder exactly as llama.cpp's converter lays
// it out for LLM_ARCH_BERT (src/models/bert.cpp, conversion/bert.py), filled with
// deterministic random weights.
//
// Tensor types per file type follow convert_hf_to_gguf.py + llama-quantize:
// - 1-D tensors (norms, biases), position_embd and token_types: always F32.
// - f16 / q8_0: every other 2-D weight in F16 / Q8_0.
// - q4_k_m (llama_tensor_get_type_impl for LLAMA_FTYPE_MOSTLY_Q4_K_M): Q4_K by
//   default; Q6_K for attn_v and ffn_down on the "use_more_bits" layers (the first
//   and last eighth, plus every third layer in between) and for token_embd (BERT has
//   no output.weight, so llama.cpp treats token_embd as the tied output tensor).
// - A row length the block size does not divide falls back: Q6_K -> Q8_0 (as
//   llama.cpp), Q4_K -> Q8_0 (llama.cpp would pick Q5_0, which this generator
//   does not implement), Q8_0 -> F16.
//
// Big weights are tiled from a pool of random 256-wide row chunks (see
// `tensorSource`) so that a full-size Q4_K_M file takes seconds, not minutes,
// to quantize; the bytes are still exactly what ggml makes of the F32 file.
import { rename, rm, stat } from "node:fs/promises";
import { quantize } from "./quantize.js";
import { loadRealVocab, loadSmallVocab, Vocab, vocabMetadata } from "./vocab.js";
import { GgmlType, ggmlTypeLayout, gguf, GgufTensorSpec, GgufValue, writeGgufFile } from "./writer.js";

export type BgeM3FileType = "f32" | "f16" | "q8_0" | "q4_k_m";
/**
 * How the random weights are scaled: "fan-in" (std 1/sqrt(fan_in) for matrices, so attention logits have unit scale at
 * any width), or "bert" (std 0.02 for every matrix and embedding, BERT's initializer_range: at full size smaller
 * attention logits, as trained BERT-family models have).
 */
export type BgeM3Init = "fan-in" | "bert";

export type BgeM3Options = {
  layers?: number,
  width?: number,
  heads?: number,
  ffn?: number,
  contextLength?: number,
  fileType?: BgeM3FileType,
  init?: BgeM3Init,
  /** "real" = BGE-M3's 250,002 tokens; a number = that many first real tokens (speed only). */
  vocab?: "real" | number,
  seed?: number,
  /**
   * general.architecture and the prefix of the hyper-parameter keys. Only for
   * negative tests ("a valid GGUF of the wrong architecture"): llama.cpp loads
   * nothing but "bert" from this layout.
   */
  architecture?: string
};

export type ResolvedBgeM3Options = Required<BgeM3Options>;

/** BAAI/bge-m3's real dimensions. */
export const bgeM3FullSize: ResolvedBgeM3Options = {
  layers: 24, width: 1024, heads: 16, ffn: 4096, contextLength: 8192, fileType: "f32", init: "fan-in", vocab: "real", seed: 1,
  architecture: "bert"
};

export function resolveBgeM3Options(options: BgeM3Options): ResolvedBgeM3Options {
  const o: ResolvedBgeM3Options = { ...bgeM3FullSize, ...stripUndefined(options) };
  for (const key of ["layers", "width", "heads", "ffn", "contextLength", "seed"] as const)
    if (!Number.isInteger(o[key]) || o[key] < (key === "seed" ? 0 : 1))
      throw new Error(`${key} must be a ${key === "seed" ? "non-negative" : "positive"} integer, got ${o[key]}`);
  if (o.width % o.heads !== 0)
    throw new Error(`width ${o.width} is not divisible by heads ${o.heads}`);
  if (!["f32", "f16", "q8_0", "q4_k_m"].includes(o.fileType))
    throw new Error(`unknown file type ${o.fileType}`);
  if (!["fan-in", "bert"].includes(o.init))
    throw new Error(`init must be fan-in or bert, got ${o.init}`);
  if (!/^[a-z0-9_-]+$/.test(o.architecture))
    throw new Error(`architecture must be a plain lowercase name, got ${o.architecture}`);
  if (o.vocab !== "real" && !Number.isInteger(o.vocab))
    throw new Error(`vocab must be "real" or a token count, got ${o.vocab}`);
  return o;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

// ------------------------------------------------------------------ random numbers

/** sfc32: tiny, fast, and identical on every platform (integer ops only). */
export function createRng(seed: number, stream = ""): () => number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < stream.length; i++)
    h = Math.imul(h ^ stream.charCodeAt(i), 0x01000193);
  let a = fmix32(h ^ 0x9e3779b9), b = fmix32(h ^ 0x243f6a88), c = fmix32(h ^ 0xb7e15162), d = fmix32(seed ^ 0x85ebca6b);
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i++)
    next();
  return next;
}

export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const sqrt3 = Math.sqrt(3);

/**
 * Irwin-Hall(4) scaled to unit variance: bell-shaped, bounded at +-3.46 sigma,
 * and free of log/cos whose last bits could differ between platforms.
 */
function fillNormalish(out: Float32Array, rng: () => number, mean: number, std: number): void {
  const k = sqrt3 * std / 4294967296;
  for (let i = 0; i < out.length; i++)
    out[i] = mean + (rng() + rng() + rng() + rng() - 2 * 4294967296) * k;
}

// ------------------------------------------------------------------ tensor plan

type Init = { mean: number, std: number };

export type BgeM3TensorPlan = {
  name: string,
  shape: [number] | [number, number],
  type: GgmlType,
  init: Init,
  /** weights worth quantizing (everything llama-quantize would touch) */
  matrix: boolean
};

const BERT_STD = 0.02; // BERT's initializer_range
const bias: Init = { mean: 0, std: 0.02 };
const normWeight: Init = { mean: 1, std: 0.05 };

/**
 * Every tensor llama.cpp creates for LLM_ARCH_BERT, in the converter's order.
 * With init "fan-in" matrices use std 1/sqrt(fan_in) (0.031 / 0.016 at full size, i.e. BERT's ~0.02)
 * so that attention logits have unit scale at any width: tiny models then get
 * non-uniform attention instead of a plain average. With "bert" every matrix and embedding has std 0.02.
 */
export function planBgeM3Tensors(options: BgeM3Options, vocabSize: number): BgeM3TensorPlan[] {
  const o = resolveBgeM3Options(options);
  const { width: n, ffn, layers } = o;
  const matrixStd = (fanIn: number): number => o.init === "bert" ? BERT_STD : 1 / Math.sqrt(fanIn);
  const plan: BgeM3TensorPlan[] = [];
  const add = (name: string, shape: [number] | [number, number], init: Init, matrix: boolean): void => {
    plan.push({ name, shape, init, matrix, type: GgmlType.F32 });
  };

  add("token_embd.weight", [n, vocabSize], { mean: 0, std: o.init === "bert" ? BERT_STD : 0.05 }, true);
  add("position_embd.weight", [n, o.contextLength], { mean: 0, std: 0.02 }, false);
  add("token_types.weight", [n, 1], { mean: 0, std: 0.02 }, false);
  add("token_embd_norm.weight", [n], normWeight, false);
  add("token_embd_norm.bias", [n], bias, false);
  for (let i = 0; i < layers; i++) {
    for (const part of ["attn_q", "attn_k", "attn_v", "attn_output"]) {
      add(`blk.${i}.${part}.weight`, [n, n], { mean: 0, std: matrixStd(n) }, true);
      add(`blk.${i}.${part}.bias`, [n], bias, false);
    }
    add(`blk.${i}.attn_output_norm.weight`, [n], normWeight, false);
    add(`blk.${i}.attn_output_norm.bias`, [n], bias, false);
    add(`blk.${i}.ffn_up.weight`, [n, ffn], { mean: 0, std: matrixStd(n) }, true);
    add(`blk.${i}.ffn_up.bias`, [ffn], bias, false);
    add(`blk.${i}.ffn_down.weight`, [ffn, n], { mean: 0, std: matrixStd(ffn) }, true);
    add(`blk.${i}.ffn_down.bias`, [n], bias, false);
    add(`blk.${i}.layer_output_norm.weight`, [n], normWeight, false);
    add(`blk.${i}.layer_output_norm.bias`, [n], bias, false);
  }
  for (const t of plan)
    t.type = t.matrix ? matrixType(o.fileType, t.name, t.shape[0], layers) : GgmlType.F32;
  return plan;
}

function matrixType(fileType: BgeM3FileType, name: string, rowLength: number, layers: number): GgmlType {
  let wanted: GgmlType;
  switch (fileType) {
    case "f32": return GgmlType.F32;
    case "f16": return GgmlType.F16;
    case "q8_0": wanted = GgmlType.Q8_0; break;
    case "q4_k_m": {
      const layer = Number(/^blk\.(\d+)\./.exec(name)?.[1] ?? -1);
      const moreBits = layer >= 0 && useMoreBits(layer, layers);
      if (name === "token_embd.weight")
        wanted = rowLength % 256 === 0 ? GgmlType.Q6_K : GgmlType.Q8_0;
      else if ((name.endsWith(".attn_v.weight") || name.endsWith(".ffn_down.weight")) && moreBits)
        wanted = GgmlType.Q6_K;
      else
        wanted = GgmlType.Q4_K;
      break;
    }
  }
  if (rowLength % ggmlTypeLayout[wanted].blockSize !== 0)
    wanted = GgmlType.Q8_0;
  if (rowLength % ggmlTypeLayout[wanted].blockSize !== 0)
    wanted = GgmlType.F16;
  return wanted;
}

/** llama-quant.cpp's use_more_bits (attn_v counts one per layer, as ffn_down does). */
function useMoreBits(layer: number, layers: number): boolean {
  const eighth = Math.floor(layers / 8);
  return layer < eighth || layer >= Math.floor(7 * layers / 8) || (layer - eighth) % 3 === 2;
}

const fileTypeIds: Record<BgeM3FileType, number> = { f32: 0, f16: 1, q8_0: 7, q4_k_m: 15 };

// ------------------------------------------------------------------ tensor data

const chunk = 256; // every supported type packs 256 values into whole blocks
const defaultPoolChunks = 2048;
const tokenEmbdPoolChunks = 16384; // keeps token rows distinct: 4 chunks of 16k choices per full-size row

/**
 * The F32 values of a tensor as a row-range generator.
 * Small tensors (or rows not divisible by 256): i.i.d. values, row-major.
 * Larger matrices: row r, chunk c is pool[fmix32(r, c) % P], P random 256-value
 * chunks. Only P*256 values need quantizing, and since K-quant super-blocks and
 * Q8_0 blocks never straddle a 256 boundary, copying a quantized pool chunk gives
 * the same bytes as quantizing the assembled row.
 */
type TensorSource =
  | { kind: "dense", rowLength: number, rows: number, values: (firstRow: number, rowCount: number) => Float32Array }
  | { kind: "pooled", rowLength: number, rows: number, pool: Float32Array, poolChunks: number, chunkIndex: (row: number, c: number) => number };

function tensorSource(plan: BgeM3TensorPlan, seed: number): TensorSource {
  const rowLength = plan.shape[0];
  const rows = plan.shape[1] ?? 1;
  const rng = createRng(seed, plan.name);
  const chunksPerRow = rowLength / chunk;
  const poolChunks = plan.name === "token_embd.weight" ? tokenEmbdPoolChunks : defaultPoolChunks;
  if (plan.matrix && Number.isInteger(chunksPerRow) && rows * chunksPerRow > poolChunks) {
    const pool = new Float32Array(poolChunks * chunk);
    fillNormalish(pool, rng, plan.init.mean, plan.init.std);
    const salt = rng();
    const chunkIndex = (row: number, c: number): number =>
      fmix32((Math.imul(row, 0x9e3779b1) + Math.imul(c, 0x85ebca77) + salt) | 0) % poolChunks;
    return { kind: "pooled", rowLength, rows, pool, poolChunks, chunkIndex };
  }
  // a single sequential stream keeps values independent of how rows are chunked
  let nextRow = 0;
  return {
    kind: "dense", rowLength, rows,
    values(firstRow, rowCount) {
      if (firstRow !== nextRow)
        throw new Error("dense tensor rows must be read in order");
      nextRow = firstRow + rowCount;
      const out = new Float32Array(rowCount * rowLength);
      fillNormalish(out, rng, plan.init.mean, plan.init.std);
      return out;
    }
  };
}

const targetChunkBytes = 4 << 20;

function* encodeTensor(plan: BgeM3TensorPlan, seed: number): Generator<Uint8Array> {
  const source = tensorSource(plan, seed);
  const { rowLength, rows } = source;
  if (source.kind === "pooled") {
    const encodedPool = quantize(plan.type, source.pool);
    const chunkBytes = encodedPool.length / source.poolChunks;
    const chunksPerRow = rowLength / chunk;
    const rowBytes = chunkBytes * chunksPerRow;
    const rowsPerYield = Math.max(1, Math.floor(targetChunkBytes / rowBytes));
    for (let first = 0; first < rows; first += rowsPerYield) {
      const count = Math.min(rowsPerYield, rows - first);
      const out = new Uint8Array(count * rowBytes);
      for (let r = 0; r < count; r++)
        for (let c = 0; c < chunksPerRow; c++) {
          const p = source.chunkIndex(first + r, c) * chunkBytes;
          out.set(encodedPool.subarray(p, p + chunkBytes), r * rowBytes + c * chunkBytes);
        }
      yield out;
    }
    return;
  }
  const rowsPerYield = Math.max(1, Math.floor((targetChunkBytes / 4) / rowLength));
  for (let first = 0; first < rows; first += rowsPerYield) {
    const count = Math.min(rowsPerYield, rows - first);
    yield quantize(plan.type, source.values(first, count));
  }
}

// ------------------------------------------------------------------ the file

export type WriteBgeM3Options = BgeM3Options & {
  /** Output path; written via `<out>.<pid>.tmp` + rename so readers never see half a file. */
  out: string
};

export type BgeM3FileSummary = {
  path: string,
  options: ResolvedBgeM3Options,
  vocabSize: number,
  bytes: number,
  seconds: number,
  tensorTypes: Record<string, string>
};

export async function loadVocabFor(vocab: "real" | number): Promise<Vocab> {
  return vocab === "real" ? loadRealVocab() : loadSmallVocab(vocab);
}

export function bgeM3Metadata(o: ResolvedBgeM3Options, vocab: Vocab): Record<string, GgufValue> {
  const arch = o.architecture;
  return {
    "general.architecture": gguf.str(arch),
    "general.type": gguf.str("model"),
    "general.name": gguf.str(`synthetic-bge-m3-L${o.layers}-H${o.width}-seed${o.seed}`),
    "general.file_type": gguf.u32(fileTypeIds[o.fileType]),
    "general.quantization_version": gguf.u32(2),
    [`${arch}.block_count`]: gguf.u32(o.layers),
    [`${arch}.context_length`]: gguf.u32(o.contextLength),
    [`${arch}.embedding_length`]: gguf.u32(o.width),
    [`${arch}.feed_forward_length`]: gguf.u32(o.ffn),
    [`${arch}.attention.head_count`]: gguf.u32(o.heads),
    [`${arch}.attention.layer_norm_epsilon`]: gguf.f32(1e-5),
    [`${arch}.attention.causal`]: gguf.bool(false),
    [`${arch}.pooling_type`]: gguf.u32(2), // LLAMA_POOLING_TYPE_CLS
    ...vocabMetadata(vocab)
  };
}

export async function writeBgeM3Gguf(options: WriteBgeM3Options): Promise<BgeM3FileSummary> {
  const started = performance.now();
  const o = resolveBgeM3Options(options);
  const vocab = await loadVocabFor(o.vocab);
  const plan = planBgeM3Tensors(o, vocab.tokens.length);
  const tensors: GgufTensorSpec[] = plan.map((t) => ({
    name: t.name,
    shape: t.shape,
    type: t.type,
    data: () => encodeTensor(t, o.seed)
  }));
  const temp = `${options.out}.${process.pid}.tmp`;
  try {
    await writeGgufFile(temp, { metadata: bgeM3Metadata(o, vocab), tensors });
    await rename(temp, options.out);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  return {
    path: options.out,
    options: o,
    vocabSize: vocab.tokens.length,
    bytes: (await stat(options.out)).size,
    seconds: (performance.now() - started) / 1000,
    tensorTypes: Object.fromEntries(plan.map((t) => [t.name, ggmlTypeLayout[t.type].name]))
  };
}
