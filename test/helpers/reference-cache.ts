// The float64 reference's results, kept on disk in .cache/reference/<version>/: a long input's forward pass
// costs seconds of JS (a 4,096-token input ~10 s on 2 cores) and gives the same numbers on every run. The
// key is what was computed, the model file (path, size, modification time) and the token ids; <version>
// hashes the reference's own source (reference.ts and the GGUF reader it dequantises with), so an edited
// reference computes afresh, and older versions are removed.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..", ".cache", "reference");
const version = createHash("sha256")
  .update(readFileSync(join(here, "reference.ts")))
  .update(readFileSync(join(here, "gguf-reader.ts")))
  .digest("hex")
  .slice(0, 16);

/** What identifies a model file's contents for the cache. */
export function modelFileIdentity(path: string): string {
  const { size, mtimeMs } = statSync(path);
  return `${realpathSync(path)}:${size}:${mtimeMs}`;
}

/** `compute()`'s result for `kind` of `ids` on the model `model` (modelFileIdentity), from disk when computed before. */
export function cachedReference(kind: string, model: string, ids: readonly number[], compute: () => Float64Array): Float64Array {
  const dir = join(root, version);
  const file = join(dir, `${createHash("sha256").update(`${kind}\n${model}\n${ids.join(",")}`).digest("hex")}.f64`);
  if (existsSync(file)) {
    const bytes = readFileSync(file);
    return new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  }
  const result = compute();
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true });
    for (const old of readdirSync(root)) if (old !== version) rmSync(join(root, old), { recursive: true, force: true });
  }
  // written whole, then renamed: test files running side by side never read a partial result
  const partial = `${file}.${process.pid}.partial`;
  writeFileSync(partial, new Uint8Array(result.buffer, result.byteOffset, result.byteLength));
  renameSync(partial, file);
  return result;
}
