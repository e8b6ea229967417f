import { stat } from "node:fs/promises";
import path from "node:path";
import { ModelError } from "./errors.js";
import { isRemoteModel } from "./reference.js";

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

/**
 * Returns the local path of the model file, downloading it into modelDir first when it is remote
 * and not there yet (a later start finds it and downloads nothing). `reference` is what
 * checkModelReference returned for EMBEDDING_MODEL: a local path, an hf: URI or a URL.
 */
export async function resolveModel(reference: string, options: ResolveOptions): Promise<string> {
  if (!isRemoteModel(reference)) {
    const file = path.resolve(reference);
    const info = await stat(file).catch(() => undefined);
    if (!info) throw new ModelError(`model file not found: ${file}`);
    if (!info.isFile()) throw new ModelError(`model path is not a file: ${file}`);
    return file;
  }
  // imported here, not at the top: a local file needs none of node-llama-cpp (~40 MB of RSS once loaded)
  const { resolveModelFile } = await import("node-llama-cpp");
  try {
    return await resolveModelFile(reference, {
      directory: path.resolve(options.modelDir),
      cli: options.progressBar,
      onProgress: ({ downloadedSize, totalSize }) =>
        options.onProgress?.({ downloadedBytes: downloadedSize, totalBytes: totalSize }),
      signal: options.signal,
    });
  } catch (error) {
    throw new ModelError(`could not download ${reference}: ${(error as Error).message}`);
  }
}
