import path from "node:path";
import { hubFileUrl as fileUrl } from "../hub.js";
import { HEAD_FILES } from "./heads.js";
import type { HeadsSource } from "./setting.js";

/** Where a hf: source's files are cached: `MODEL_DIR/hf--<owner>--<repo>[/<folder>]` (Hugging Face names never hold `--`). */
export function hubCacheDirectory(modelDir: string, source: Extract<HeadsSource, { kind: "hf" }>): string {
  return path.resolve(modelDir, `hf--${source.owner}--${source.repo}`, ...source.folder.split("/").filter(Boolean));
}

/** The download URL of one heads file from the main revision, on `mirror` (HF_ENDPOINT) when not empty. */
export function hubFileUrl(
  source: Extract<HeadsSource, { kind: "hf" }>,
  file: (typeof HEAD_FILES)[keyof typeof HEAD_FILES],
  mirror = "",
): string {
  return fileUrl({ owner: source.owner, repo: source.repo, revision: "main", path: [...source.folder.split("/").filter(Boolean), file] }, mirror);
}

/** The source as the setting names it, for messages. */
export function hubName(source: Extract<HeadsSource, { kind: "hf" }>): string {
  return `hf:${source.owner}/${source.repo}${source.folder ? `/${source.folder}` : ""}`;
}
