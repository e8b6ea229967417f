import { ModelError } from "./errors.js";

const DEFAULT_ENDPOINT = "https://huggingface.co";

/** One file of a Hugging Face repository at a revision. */
export interface HubFile {
  readonly owner: string;
  readonly repo: string;
  readonly revision: string;
  /** Folders inside the repository, then the file name. */
  readonly path: readonly string[];
}

/** The endpoint downloads come from: HF_ENDPOINT when set, huggingface.co otherwise; no trailing slash. */
export function hubEndpoint(mirror = ""): string {
  return (mirror || DEFAULT_ENDPOINT).replace(/\/+$/, "");
}

/** `<endpoint>/<owner>/<repo>/resolve/<revision>/<path>`: the URL the Hugging Face tools download a file from. */
export function hubFileUrl(file: HubFile, mirror = ""): string {
  const parts = [file.owner, file.repo, "resolve", file.revision, ...file.path];
  return `${hubEndpoint(mirror)}/${parts.map(encodeURIComponent).join("/")}`;
}

/** Hugging Face's rule for owner and repository names: letters, digits, `_ . -`; no `--` or `..`. */
const HUB_NAME = /^[A-Za-z0-9](?:[\w.-]*[A-Za-z0-9_])?$/;

export function isHubName(name: string | undefined): name is string {
  return !!name && HUB_NAME.test(name) && !name.includes("--") && !name.includes("..");
}

const FORM = "hf:<owner>/<repo>/<file>.gguf (optionally [/<folder>]/<file>.gguf and #<revision>)";

/** Parses `hf:owner/repo[/folders]/file.gguf[#revision]` (also `hf://`); throws a ModelError naming the form otherwise. */
export function parseHubModel(reference: string): HubFile {
  const body = reference.replace(/^hf:(\/\/)?/i, "");
  const [location, revision = "main"] = body.split("#", 2);
  const [owner, repo, ...path] = location.split("/");
  if (!isHubName(owner) || !isHubName(repo?.split(":")[0])) {
    throw new ModelError(`"${reference}" is not a Hugging Face file: expected ${FORM}`);
  }
  if (repo.includes(":") || path.length === 0 || path.at(-1) === "") {
    throw new ModelError(`"${reference}" names no file: write ${FORM}; the repository's "Files" page lists its .gguf files`);
  }
  if (path.some((part) => part === "" || part === "." || part === ".." || /[\\\0]/.test(part)) || !revision) {
    throw new ModelError(`"${reference}" has an empty, . or .. part: expected ${FORM}`);
  }
  return { owner, repo, revision, path };
}

/** `https://<host>/<owner>/<repo>/resolve|blob/<revision>/<path>`: a hub file named by URL, or undefined. */
export function hubFileOfUrl(url: URL): HubFile | undefined {
  const [, owner, repo, kind, revision, ...path] = url.pathname.split("/").map(decodeURIComponent);
  if (!isHubName(owner) || !isHubName(repo) || (kind !== "resolve" && kind !== "blob") || !revision || path.length === 0 || path.includes("")) return undefined;
  return { owner, repo, revision, path };
}

/** Characters a file name cannot hold, replaced as node-llama-cpp's filenamify replaces them. */
export const safeFileName = (text: string): string => text.replace(/[<>:"/\\|?*\u0000-\u001f]/g, "!");

const stem = (file: string): string => file.toLowerCase().replace(/\.gguf$/, "");

/**
 * The name under MODEL_DIR a hub model file is kept as: node-llama-cpp's (which downloaded models
 * before), so a MODEL_DIR filled by an earlier version is found: `hf_<owner>_[<repo>_][<revision>_][<folders>_]<file>`,
 * the repository left out when it is `<x>-GGUF` and the file starts with `<x>`, a folder left out when it is named like the file.
 */
export function hubModelFileName({ owner, repo, revision, path }: HubFile): string {
  const file = path.at(-1) as string;
  const folders = path.slice(0, -1);
  const parts = ["hf", owner];
  const repoImplied = repo.toLowerCase().endsWith("-gguf") && file.toLowerCase().endsWith(".gguf") && stem(file).startsWith(repo.toLowerCase().slice(0, -"-gguf".length));
  if (!repoImplied || revision !== "main") parts.push(repo);
  if (revision !== "main") parts.push(revision);
  if (file.toLowerCase().endsWith(".gguf") && folders.at(-1)?.toLowerCase() === stem(file)) folders.pop();
  if (folders.length > 0) parts.push(folders.join("__"));
  return `${parts.map(safeFileName).join("_")}_${safeFileName(file)}`;
}
