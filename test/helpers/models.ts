// Generated test models, cached under <repo>/.cache/test-models/ by a hash of the
// options and of the generator's source, so an edited generator never serves a
// stale file. Generation writes a temp file and renames it, so test files running
// in parallel may both generate but never see a partial model.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { BgeM3Options, resolveBgeM3Options, writeBgeM3Gguf } from "../../scripts/gguf/bge-m3.js";
import { repoRoot } from "../../scripts/gguf/vocab.js";

/**
 * Real vocabulary, BGE-M3's context length, 2 layers of width 64. An 8k-token
 * input takes ~3-4 s on 2 cores once a context is warm (the first eval of a fresh
 * 8192-token context took ~35 s here, ~13 s with flash attention). Width 64 is
 * below the 256-wide K-quant super-block, so a q4_k_m TINY holds Q8_0 weights:
 * use TINY_K for K-quants.
 */
export const TINY: Readonly<BgeM3Options> = Object.freeze({
  layers: 2, width: 64, heads: 4, ffn: 128, contextLength: 8192, vocab: "real", fileType: "f32", seed: 1
});

/** Smallest shape whose rows fit Q4_K/Q6_K super-blocks (width and ffn multiples of 256). */
export const TINY_K: Readonly<BgeM3Options> = Object.freeze({
  layers: 2, width: 256, heads: 4, ffn: 512, contextLength: 8192, vocab: "real", fileType: "f32", seed: 1
});

/**
 * Head size 64 like BGE-M3 (2 heads of width 128), so attention takes the same CPU kernels as the real
 * model (patch 0003's F32 flash attention needs whole SIMD tiles per head); the smallest such shape.
 */
export const TINY_HEAD64: Readonly<BgeM3Options> = Object.freeze({
  layers: 2, width: 128, heads: 2, ffn: 256, contextLength: 8192, vocab: "real", fileType: "f32", seed: 1
});

/** BAAI/bge-m3's real shape (Q8_0 ~635 MB, Q4_K_M ~440 MB, F32 ~2.3 GB). */
export const FULL: Readonly<BgeM3Options> = Object.freeze({
  layers: 24, width: 1024, heads: 16, ffn: 4096, contextLength: 8192, vocab: "real", fileType: "q8_0", seed: 1
});

export const testModelsDir = join(repoRoot, ".cache", "test-models");

const generatorDir = join(repoRoot, "scripts", "gguf");

let generatorHash: string | undefined;

/** Every file under scripts/gguf/, its name and contents. */
function currentGeneratorHash(): string {
  if (generatorHash === undefined) {
    const h = createHash("sha256");
    const files = readdirSync(generatorDir, { recursive: true, encoding: "utf8" })
      .filter((name) => statSync(join(generatorDir, name)).isFile())
      .sort();
    for (const name of files)
      h.update(name).update("\0").update(readFileSync(join(generatorDir, name)));
    generatorHash = h.digest("hex");
  }
  return generatorHash;
}

/** Cache file name for a set of options (defaults filled in, so equal models share a file). */
export function testModelPath(options: BgeM3Options = TINY): string {
  const resolved = resolveBgeM3Options(options);
  const key = JSON.stringify(Object.entries(resolved).sort(([a], [b]) => a.localeCompare(b)));
  const hash = createHash("sha256").update(key).digest("hex").slice(0, 12);
  const { fileType, layers, width } = resolved;
  return join(testModelsDir, `bge-m3-${fileType}-L${layers}-H${width}-${currentGeneratorHash().slice(0, 8)}-${hash}.gguf`);
}

/** Drops models made by an older generator, which would otherwise pile up (~100 MB per edit). */
function pruneStaleModels(): void {
  const current = `-${currentGeneratorHash().slice(0, 8)}-`;
  for (const name of readdirSync(testModelsDir))
    if (name.startsWith("bge-m3-") && name.endsWith(".gguf") && !name.includes(current))
      rmSync(join(testModelsDir, name), { force: true });
}

const pending = new Map<string, Promise<string>>();

/** Path of a generated model with `options` (TINY by default), generating it on first use. */
export function testModel(options: BgeM3Options = TINY): Promise<string> {
  const path = testModelPath(options);
  if (existsSync(path))
    return Promise.resolve(path);
  let p = pending.get(path);
  if (p === undefined) {
    mkdirSync(testModelsDir, { recursive: true });
    pruneStaleModels();
    p = writeBgeM3Gguf({ ...options, out: path }).then(() => path);
    p.catch(() => pending.delete(path));
    pending.set(path, p);
  }
  return p;
}
