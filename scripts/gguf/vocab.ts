// The real XLM-RoBERTa / BGE-M3 SentencePiece (UGM) vocabulary, taken from the
// llama.cpp source that node-llama-cpp pins (nothing can be downloaded here).
// llama.cpp's test vocab `ggml-vocab-nomic-bert-moe.gguf` is XLM-R's tokenizer with
// 46 "[PAD…]" rows appended; BGE-M3 uses exactly its first 250,002 tokens.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { readGgufFileInfo } from "node-llama-cpp";
import { gguf, GgufValue, GgufValueType } from "./writer.js";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

export const bgeM3VocabSize = 250002;
export const bgeM3SpecialTokens = { bos: 0, pad: 1, eos: 2, unk: 3, mask: 250001 } as const;

const vocabFileName = "ggml-vocab-nomic-bert-moe.gguf";
const bundlePath = join(repoRoot, "node_modules", "node-llama-cpp", "llama", "gitRelease.bundle");

export type Vocab = {
  tokens: string[],
  scores: Float32Array,
  /** llama_token_attr style: 1 normal, 2 unknown, 3 control, ... */
  tokenTypes: Int32Array,
  precompiledCharsmap: Uint8Array,
  addSpacePrefix: boolean,
  removeExtraWhitespaces: boolean,
  maskTokenId: number
};

/** Path of the cached vocab GGUF, extracted from node-llama-cpp's git bundle on first use. */
export function ensureVocabFile(cacheDir = join(repoRoot, ".cache", "vocab")): string {
  const target = join(cacheDir, vocabFileName);
  if (existsSync(target))
    return target;

  mkdirSync(cacheDir, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), "vocab-bundle-"));
  try {
    // a bare clone of the bundle is ~1 s; `git show` then reads the one blob
    execFileSync("git", ["clone", "--quiet", "--bare", bundlePath, join(scratch, "repo.git")], { stdio: "pipe" });
    const bytes = execFileSync("git", ["--git-dir", join(scratch, "repo.git"), "show", `HEAD:models/${vocabFileName}`], {
      maxBuffer: 64 << 20,
      stdio: ["ignore", "pipe", "pipe"]
    });
    // temp + rename: parallel test processes may race here
    const temp = `${target}.${process.pid}.tmp`;
    writeFileSync(temp, bytes);
    renameSync(temp, target);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return target;
}

let realVocabPromise: Promise<Vocab> | undefined;

/** BGE-M3's 250,002-token vocabulary with scores, token types and normaliser data. */
export function loadRealVocab(): Promise<Vocab> {
  realVocabPromise ??= readVocab(ensureVocabFile());
  return realVocabPromise;
}

async function readVocab(path: string): Promise<Vocab> {
  const info = await readGgufFileInfo(path, { readTensorInfo: false, logWarnings: false });
  // the typed metadata tree does not cover every tokenizer key, so read it loosely
  const t = (info.metadata as unknown as { tokenizer: { ggml: Record<string, unknown> } }).tokenizer.ggml;
  const tokens = (t.tokens as string[]).slice(0, bgeM3VocabSize);
  if (t.model !== "t5" || tokens[bgeM3SpecialTokens.mask] !== "<mask>" || tokens[0] !== "<s>" || tokens[3] !== "<unk>")
    throw new Error(`${path} is not the XLM-R vocabulary this generator expects`);
  return {
    tokens,
    scores: Float32Array.from((t.scores as number[]).slice(0, bgeM3VocabSize)),
    tokenTypes: Int32Array.from((t.token_type as number[]).slice(0, bgeM3VocabSize)),
    precompiledCharsmap: Uint8Array.from(t.precompiled_charsmap as number[], (b) => b & 0xff),
    addSpacePrefix: t.add_space_prefix as boolean,
    removeExtraWhitespaces: t.remove_extra_whitespaces as boolean,
    maskTokenId: bgeM3SpecialTokens.mask
  };
}

/**
 * First `size - 1` real tokens plus `<mask>` as the last id. Only for where a
 * 250k-row token_embd is too slow: text outside those pieces tokenizes to <unk>.
 */
export async function loadSmallVocab(size: number): Promise<Vocab> {
  if (!Number.isInteger(size) || size < 8 || size > bgeM3VocabSize)
    throw new Error(`small vocab size must be an integer in [8, ${bgeM3VocabSize}], got ${size}`);
  const real = await loadRealVocab();
  if (size === bgeM3VocabSize)
    return real;
  const mask = size - 1;
  const tokens = real.tokens.slice(0, mask);
  tokens.push("<mask>");
  const scores = new Float32Array(size);
  scores.set(real.scores.subarray(0, mask));
  const tokenTypes = new Int32Array(size);
  tokenTypes.set(real.tokenTypes.subarray(0, mask));
  tokenTypes[mask] = real.tokenTypes[bgeM3SpecialTokens.mask];
  return { ...real, tokens, scores, tokenTypes, maskTokenId: mask };
}

/** tokenizer.* keys as llama.cpp's converter writes them for XLM-RoBERTa. */
export function vocabMetadata(vocab: Vocab): Record<string, GgufValue> {
  return {
    "tokenizer.ggml.model": gguf.str("t5"),
    "tokenizer.ggml.pre": gguf.str("default"),
    "tokenizer.ggml.tokens": gguf.strArray(vocab.tokens),
    "tokenizer.ggml.scores": gguf.numArray(GgufValueType.FLOAT32, vocab.scores),
    "tokenizer.ggml.token_type": gguf.numArray(GgufValueType.INT32, vocab.tokenTypes),
    "tokenizer.ggml.add_space_prefix": gguf.bool(vocab.addSpacePrefix),
    "tokenizer.ggml.token_type_count": gguf.u32(1),
    "tokenizer.ggml.remove_extra_whitespaces": gguf.bool(vocab.removeExtraWhitespaces),
    // llama.cpp only accepts this as a UINT8/INT8 array
    "tokenizer.ggml.precompiled_charsmap": gguf.numArray(GgufValueType.UINT8, vocab.precompiledCharsmap),
    "tokenizer.ggml.bos_token_id": gguf.u32(bgeM3SpecialTokens.bos),
    "tokenizer.ggml.eos_token_id": gguf.u32(bgeM3SpecialTokens.eos),
    "tokenizer.ggml.unknown_token_id": gguf.u32(bgeM3SpecialTokens.unk),
    "tokenizer.ggml.seperator_token_id": gguf.u32(bgeM3SpecialTokens.eos),
    "tokenizer.ggml.padding_token_id": gguf.u32(bgeM3SpecialTokens.pad),
    "tokenizer.ggml.mask_token_id": gguf.u32(vocab.maskTokenId),
    "tokenizer.ggml.add_bos_token": gguf.bool(true),
    "tokenizer.ggml.add_eos_token": gguf.bool(true)
  };
}
