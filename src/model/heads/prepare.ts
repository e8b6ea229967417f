import { mkdir, stat } from "node:fs/promises";
import path from "node:path";
import type { DownloadProgress, HubAccess } from "../resolve.js";
import { downloadFiles } from "./download.js";
import { HeadsError } from "./errors.js";
import { HEAD_FILES, readHeadsDirectory } from "./heads.js";
import { hubCacheDirectory, hubFileUrl, hubName } from "./hub.js";
import { parseHeadsSetting, type HeadsSource } from "./setting.js";
import type { HeadsState } from "./types.js";

export interface PrepareHeadsOptions {
  /** MODEL_DIR: hf: heads are cached in a folder per repository under it. */
  readonly modelDir: string;
  /** HF_ENDPOINT and HF_TOKEN; huggingface.co without a token when absent. */
  readonly hub?: HubAccess;
  /** The model's hidden size; heads of another width are unavailable. */
  readonly expectedHiddenSize?: number;
  /** Download progress of both files together (the model's shape: periodicProgress takes it). */
  readonly onProgress?: (progress: DownloadProgress) => void;
  readonly signal?: AbortSignal;
  /** Longest pause of a download before it is given up (ms); download.ts's STALL_TIMEOUT_MS by default. */
  readonly stallTimeoutMs?: number;
}

const isFile = async (file: string): Promise<boolean> => (await stat(file).catch(() => undefined))?.isFile() ?? false;

/** The folder holding both files: downloaded into MODEL_DIR first for hf: (only the files not there yet). */
async function headsDirectory(source: Exclude<HeadsSource, { kind: "none" }>, options: PrepareHeadsOptions): Promise<string> {
  if (source.kind === "directory") {
    const directory = path.resolve(source.path);
    if (!(await stat(directory).catch(() => undefined))?.isDirectory()) throw new HeadsError(`${directory} is not a directory`);
    return directory;
  }
  const directory = hubCacheDirectory(options.modelDir, source);
  const missing = [];
  for (const file of Object.values(HEAD_FILES)) {
    if (!(await isFile(path.join(directory, file)))) missing.push({ url: hubFileUrl(source, file, options.hub?.endpoint), file: path.join(directory, file) });
  }
  if (missing.length > 0) {
    await mkdir(directory, { recursive: true }).catch((error: Error) => {
      throw new HeadsError(`cannot create ${directory}: ${error.message}`);
    });
    await downloadFiles(missing, { ...options, token: options.hub?.token });
  }
  return directory;
}

/**
 * The sparse and ColBERT heads M3_HEADS names: `hf:owner/repo[/folder]` (downloaded once into
 * MODEL_DIR; a later start reads the files and fetches nothing), a local directory, or `none`.
 * Whatever keeps the heads from being had (none, a missing or bad file, no network, another width)
 * gives `available: false` with a one-line reason; dense embeddings do not need them. Throws only
 * a HeadsSettingError for a malformed setting, which config validation has already refused.
 */
export async function prepareHeads(setting: string, options: PrepareHeadsOptions): Promise<HeadsState> {
  const source = parseHeadsSetting(setting);
  if (source.kind === "none") return { available: false, reason: "M3_HEADS is none: the sparse and ColBERT heads are off" };
  try {
    const directory = await headsDirectory(source, options);
    const heads = await readHeadsDirectory(directory, options.expectedHiddenSize);
    return { available: true, heads, source: source.kind === "hf" ? `${hubName(source)} (${directory})` : directory };
  } catch (error) {
    const message = error instanceof HeadsError ? error.message : `${(error as Error).name}: ${(error as Error).message}`;
    return { available: false, reason: message.replace(/\s*\n\s*/g, " ") };
  }
}
