import { stat } from "node:fs/promises";
import path from "node:path";
import { resolveModelFile } from "node-llama-cpp";
import { DEFAULT_MODEL_URI } from "../config/schema.js";
import { ModelError } from "./errors.js";

/** The seed project named models the Hugging Face way; those names mean our default GGUF. */
const SEED_MODEL_NAMES = new Set(["baai/bge-m3", "bge-m3"]);

export interface DownloadProgress {
  readonly downloadedBytes: number;
  readonly totalBytes: number;
}

export interface ResolveOptions {
  readonly modelDir: string;
  /** Show node-llama-cpp's progress bar (on a terminal). */
  readonly progressBar: boolean;
  readonly onProgress?: (progress: DownloadProgress) => void;
  readonly signal?: AbortSignal;
}

export function isRemoteModel(reference: string): boolean {
  return /^(hf:|https?:\/\/)/i.test(reference);
}

/** Maps EMBEDDING_MODEL to what node-llama-cpp resolves: a local path, an hf: URI or a URL. */
export function normaliseModelReference(reference: string): string {
  return SEED_MODEL_NAMES.has(reference.trim().toLowerCase()) ? DEFAULT_MODEL_URI : reference.trim();
}

/**
 * Returns the local path of the model file, downloading it into modelDir first when it is remote
 * and not there yet (a later start finds it and downloads nothing).
 */
export async function resolveModel(reference: string, options: ResolveOptions): Promise<string> {
  const normalised = normaliseModelReference(reference);
  if (!isRemoteModel(normalised)) {
    const file = path.resolve(normalised);
    const info = await stat(file).catch(() => undefined);
    if (!info) throw new ModelError(`model file not found: ${file}`);
    if (!info.isFile()) throw new ModelError(`model path is not a file: ${file}`);
    return file;
  }
  try {
    return await resolveModelFile(normalised, {
      directory: path.resolve(options.modelDir),
      cli: options.progressBar,
      onProgress: ({ downloadedSize, totalSize }) =>
        options.onProgress?.({ downloadedBytes: downloadedSize, totalBytes: totalSize }),
      signal: options.signal,
    });
  } catch (error) {
    throw new ModelError(`could not download ${normalised}: ${(error as Error).message}`);
  }
}
