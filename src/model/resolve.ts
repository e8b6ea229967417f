import { stat } from "node:fs/promises";
import path from "node:path";
import { ModelError } from "./errors.js";
import { isRemoteModel } from "./reference.js";

export interface DownloadProgress {
  readonly downloadedBytes: number;
  readonly totalBytes: number;
}

/** Where hf: files come from (HF_ENDPOINT, HF_TOKEN): empty strings mean huggingface.co and no token. */
export interface HubAccess {
  readonly endpoint: string;
  readonly token: string;
}

export interface ResolveOptions {
  readonly modelDir: string;
  readonly hub?: HubAccess;
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
      endpoints: options.hub?.endpoint ? { huggingFace: options.hub.endpoint } : undefined,
      tokens: options.hub?.token ? { huggingFace: options.hub.token } : undefined,
      cli: options.progressBar,
      onProgress: ({ downloadedSize, totalSize }) =>
        options.onProgress?.({ downloadedBytes: downloadedSize, totalBytes: totalSize }),
      signal: options.signal,
    });
  } catch (error) {
    throw new ModelError(`could not download ${reference}: ${(error as Error).message}`);
  }
}
