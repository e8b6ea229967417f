import { stat } from "node:fs/promises";
import path from "node:path";
import { DownloadError, downloadFile, formatBytes, type DownloadEvent, type DownloadSettings } from "./download/download.js";
import { ModelError } from "./errors.js";
import { hubEndpoint, hubFileOfUrl, hubFileUrl, hubModelFileName, parseHubModel, safeFileName } from "./hub.js";

/** Where hf: files come from (HF_ENDPOINT, HF_TOKEN; empty: huggingface.co, no token), and whether the network may be used at all (HF_HUB_OFFLINE). */
export interface HubAccess {
  readonly endpoint: string;
  readonly token: string;
  readonly offline: boolean;
}

export interface ResolveOptions {
  readonly modelDir: string;
  readonly hub?: HubAccess;
  readonly download?: DownloadSettings;
  readonly onEvent?: (event: DownloadEvent) => void;
  readonly signal?: AbortSignal;
}

export function isRemoteModel(reference: string): boolean {
  return /^(hf:|https?:\/\/)/i.test(reference);
}

/** A remote model: the URL its bytes come from, the file under MODEL_DIR they are kept in, whether HF_TOKEN goes along. */
interface RemoteModel {
  readonly url: string;
  readonly file: string;
  readonly sendToken: boolean;
}

/**
 * Where a remote EMBEDDING_MODEL is fetched from and kept. `hf:` files and hub-shaped URLs keep
 * node-llama-cpp's file names (hubModelFileName); other URLs their last path segment. Throws a
 * ModelError for a reference that names no file; checkModelReference calls this at start.
 */
export function remoteModel(reference: string, modelDir: string, hub: HubAccess = { endpoint: "", token: "", offline: false }): RemoteModel {
  if (/^hf:/i.test(reference)) {
    const file = parseHubModel(reference);
    return { url: hubFileUrl(file, hub.endpoint), file: path.resolve(modelDir, hubModelFileName(file)), sendToken: true };
  }
  let url: URL;
  try {
    url = new URL(reference);
  } catch {
    throw new ModelError(`"${reference}" is not a URL`);
  }
  const hubFile = hubFileOfUrl(url);
  const name = hubFile ? hubModelFileName(hubFile) : safeFileName(decodeURIComponent(url.pathname.split("/").at(-1) ?? ""));
  if (!name) throw new ModelError(`"${reference}" names no file: give the URL of a .gguf file`);
  // HF_TOKEN is for the hub: sent to huggingface.co or HF_ENDPOINT's host, never to another server
  const hubHost = url.host === new URL(hubEndpoint(hub.endpoint)).host || url.hostname === "huggingface.co";
  return { url: url.href, file: path.resolve(modelDir, name), sendToken: hubHost };
}

const isFile = async (file: string): Promise<boolean> => (await stat(file).catch(() => undefined))?.isFile() ?? false;

/** HF_HUB_OFFLINE and the file is missing: which file, where it comes from, how to get it here. */
async function offlineMissing(remote: RemoteModel): Promise<ModelError> {
  const partial = await stat(`${remote.file}.partial`).catch(() => undefined);
  return new ModelError(
    `HF_HUB_OFFLINE is set and the model file ${remote.file} is not there (it comes from ${remote.url}): ` +
      `copy it there (npm run fetch-model with the same EMBEDDING_MODEL where the hub is reachable, then copy MODEL_DIR's file), ` +
      `or set EMBEDDING_MODEL=/path/to.gguf` +
      (partial ? `; ${remote.file}.partial holds ${formatBytes(partial.size)} of an interrupted download: start once without HF_HUB_OFFLINE to finish it` : ""),
  );
}

/**
 * Returns the local path of the model file, downloading it into modelDir first when it is remote
 * and not there yet (a later start finds it and touches no network). With HF_HUB_OFFLINE nothing
 * is downloaded: a missing file is a ModelError naming it. `reference` is what checkModelReference
 * returned for EMBEDDING_MODEL: a local path, an hf: URI or a URL.
 */
export async function resolveModel(reference: string, options: ResolveOptions): Promise<string> {
  if (!isRemoteModel(reference)) {
    const file = path.resolve(reference);
    const info = await stat(file).catch(() => undefined);
    if (!info) throw new ModelError(`model file not found: ${file}`);
    if (!info.isFile()) throw new ModelError(`model path is not a file: ${file}`);
    return file;
  }
  const remote = remoteModel(reference, options.modelDir, options.hub);
  if (await isFile(remote.file)) return remote.file;
  if (options.hub?.offline) throw await offlineMissing(remote);
  const source = {
    url: remote.url,
    file: remote.file,
    label: "model",
    setting: "EMBEDDING_MODEL",
    elsewhere:
      `or, without access to the hub: run npm run fetch-model where it is reachable and copy the file to ${remote.file}, ` +
      `or set EMBEDDING_MODEL=/path/to.gguf`,
    token: remote.sendToken ? options.hub?.token : undefined,
  };
  try {
    await downloadFile(source, { settings: options.download, onEvent: options.onEvent, signal: options.signal });
  } catch (error) {
    if (error instanceof DownloadError) throw new ModelError(error.message);
    throw error;
  }
  return remote.file;
}
