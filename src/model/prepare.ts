import { periodicProgress } from "./progress.js";
import { resolveModel, type DownloadProgress, type HubAccess } from "./resolve.js";
import { validateModelFile, type ModelFacts } from "./validate.js";

export interface PreparedModel {
  readonly path: string;
  readonly facts: ModelFacts;
}

/**
 * The model file, downloaded into modelDir if needed and checked: a progress bar on a terminal,
 * otherwise `report` a few times during a download. Shared by the server and `npm run fetch-model`.
 */
export interface PrepareModelOptions {
  readonly modelDir: string;
  readonly hub: HubAccess;
  readonly report: (percent: string, progress: DownloadProgress) => void;
}

export async function prepareModel(reference: string, { modelDir, hub, report }: PrepareModelOptions): Promise<PreparedModel> {
  const showBar = process.stderr.isTTY === true;
  const path = await resolveModel(reference, {
    modelDir,
    hub,
    progressBar: showBar,
    onProgress: showBar ? undefined : periodicProgress(report),
  });
  return { path, facts: await validateModelFile(path) };
}
