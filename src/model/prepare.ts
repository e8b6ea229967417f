import type { DownloadEvent, DownloadSettings } from "./download/download.js";
import { resolveModel, type HubAccess } from "./resolve.js";
import { validateModelFile, type ModelFacts } from "./validate.js";

export interface PreparedModel {
  readonly path: string;
  readonly facts: ModelFacts;
}

export interface PrepareModelOptions {
  readonly modelDir: string;
  readonly hub: HubAccess;
  readonly download: DownloadSettings;
  /** Every download event (progress per chunk): downloadLines turns them into lines. */
  readonly onEvent?: (event: DownloadEvent) => void;
}

/**
 * The model file, downloaded into modelDir if needed (resolveModel), and checked. Shared by the
 * server and `npm run fetch-model`.
 */
export async function prepareModel(reference: string, { modelDir, hub, download, onEvent }: PrepareModelOptions): Promise<PreparedModel> {
  const path = await resolveModel(reference, { modelDir, hub, download, onEvent });
  return { path, facts: await validateModelFile(path) };
}
