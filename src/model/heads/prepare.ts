import { stat } from "node:fs/promises";
import path from "node:path";
import { DownloadError, downloadFile, type DownloadEvent, type DownloadSettings } from "../download/download.js";
import type { HubAccess } from "../resolve.js";
import { HeadsError } from "./errors.js";
import { HEAD_FILES, readHeadsDirectory } from "./heads.js";
import { hubCacheDirectory, hubFileUrl, hubName } from "./hub.js";
import { parseHeadsSetting, type HeadsSource } from "./setting.js";
import type { HeadsState } from "./types.js";

export interface PrepareHeadsOptions {
  /** MODEL_DIR: hf: heads are cached in a folder per repository under it. */
  readonly modelDir: string;
  /** HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE; huggingface.co without a token when absent. */
  readonly hub?: HubAccess;
  /** The model's hidden size; heads of another width are unavailable. */
  readonly expectedHiddenSize?: number;
  /** The model's download settings: deadline, stall timeout, proxies. */
  readonly download?: DownloadSettings;
  /** Download events of each file (downloadLines turns them into lines). */
  readonly onEvent?: (event: DownloadEvent) => void;
  readonly signal?: AbortSignal;
}

const isFile = async (file: string): Promise<boolean> => (await stat(file).catch(() => undefined))?.isFile() ?? false;

/** The folder holding both files: downloaded into MODEL_DIR first for hf: (only the files not there yet, one after the other). */
async function headsDirectory(source: Exclude<HeadsSource, { kind: "none" }>, options: PrepareHeadsOptions): Promise<string> {
  if (source.kind === "directory") {
    const directory = path.resolve(source.path);
    if (!(await stat(directory).catch(() => undefined))?.isDirectory()) throw new HeadsError(`${directory} is not a directory`);
    return directory;
  }
  const directory = hubCacheDirectory(options.modelDir, source);
  for (const name of Object.values(HEAD_FILES)) {
    const file = path.join(directory, name);
    if (await isFile(file)) continue;
    const url = hubFileUrl(source, name, options.hub?.endpoint);
    if (options.hub?.offline) throw new HeadsError(`HF_HUB_OFFLINE is set and ${file} is not there (it comes from ${url}): copy it there, or set M3_HEADS to a folder holding both files, or none`);
    const elsewhere = `or, without access to the hub: copy ${Object.values(HEAD_FILES).join(" and ")} into ${directory}, or set M3_HEADS to a folder holding them (none: dense vectors only)`;
    const download = { url, file, label: `heads file ${name}`, setting: "M3_HEADS", elsewhere, token: options.hub?.token };
    await downloadFile(download, { settings: options.download, onEvent: options.onEvent, signal: options.signal }).catch((error: unknown) => {
      throw error instanceof DownloadError ? new HeadsError(error.message) : error;
    });
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
