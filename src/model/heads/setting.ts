import { statSync } from "node:fs";
import { isHubName } from "../hub.js";
import { HeadsSettingError } from "./errors.js";

/** Where M3_HEADS says the heads come from. */
export type HeadsSource =
  | { readonly kind: "none" }
  /** `folder` is "" or a path inside the repository ("a/b"), files from its main revision. */
  | { readonly kind: "hf"; readonly owner: string; readonly repo: string; readonly folder: string }
  | { readonly kind: "directory"; readonly path: string };

const FORMS = "hf:<owner>/<repo>[/<folder>], a local directory holding sparse_linear.pt and colbert_linear.pt, or none";

const FOLDER_PART = /^[\w.-]+$/;

function hubSource(value: string): HeadsSource {
  const parts = value.slice("hf:".length).split("/").filter((part, i, all) => part !== "" || i < all.length - 1);
  const [owner, repo, ...folder] = parts;
  if (!isHubName(owner) || !isHubName(repo)) {
    throw new HeadsSettingError(`"${value}" is not a Hugging Face repository: expected ${FORMS}`);
  }
  if (folder.some((part) => !FOLDER_PART.test(part) || part === "." || part === "..")) {
    throw new HeadsSettingError(`"${value}" names a folder with characters or parts (., ..) a repository folder cannot have`);
  }
  if (folder.at(-1)?.toLowerCase().endsWith(".pt")) {
    throw new HeadsSettingError(`"${value}" names a file; name the repository (and folder) that holds sparse_linear.pt and colbert_linear.pt`);
  }
  return { kind: "hf", owner, repo, folder: folder.join("/") };
}

/** Parses M3_HEADS (syntax only, nothing read or fetched); throws HeadsSettingError for a malformed value. */
export function parseHeadsSetting(setting: string): HeadsSource {
  const value = setting.trim();
  if (value.toLowerCase() === "none") return { kind: "none" };
  if (/^hf:/i.test(value)) return hubSource(value);
  if (value === "") throw new HeadsSettingError(`the value is empty: expected ${FORMS}`);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) throw new HeadsSettingError(`"${value}" is a URL: expected ${FORMS}`);
  return { kind: "directory", path: value };
}

/**
 * Checks M3_HEADS once at start and returns it trimmed. Beyond the syntax, a value like `BAAI/bge-m3`
 * that is no local folder is refused with the hf: form to use instead (the seed took such ids).
 */
export function checkHeadsSetting(setting: string): string {
  const source = parseHeadsSetting(setting);
  const value = setting.trim();
  if (source.kind === "directory" && /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(value) && !statSync(value, { throwIfNoEntry: false })) {
    throw new HeadsSettingError(`"${value}" is no local folder; for the Hugging Face repository write hf:${value}`);
  }
  return value;
}
