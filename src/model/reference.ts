import { readdirSync, statSync, type Stats } from "node:fs";
import { DEFAULT_MODEL_URI } from "./defaults.js";
import { ModelError } from "./errors.js";
import { isRemoteModel, remoteModel } from "./resolve.js";

/** The seed project named models the Hugging Face way; those names mean our default GGUF. */
const SEED_MODEL_NAMES = new Set(["baai/bge-m3", "bge-m3"]);

/** What the seed's SentenceTransformer also took: a Hugging Face repository id, `owner/name`. */
const HUGGING_FACE_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/;

/** The files that make a folder a Hugging Face (sentence-transformers) checkpoint. */
const CHECKPOINT_FILE = /^(config\.json|pytorch_model\.bin|.*\.safetensors)$/;

const GGUF_FORMS = "a local .gguf path, hf:<owner>/<repo>/<file>.gguf or an https URL of a .gguf file";

function statOrUndefined(file: string): Stats | undefined {
  try {
    return statSync(file, { throwIfNoEntry: false });
  } catch {
    return undefined; // unreadable: resolveModel reports it with the path
  }
}

/** A path as a shell word, so that the printed converter command can be pasted as it is. */
function shellWord(text: string): string {
  return /^[\w./:@%+=-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

function listFolder(folder: string): string[] {
  try {
    return readdirSync(folder);
  } catch {
    return [];
  }
}

function folderProblem(folder: string): string {
  const files = listFolder(folder);
  const gguf = files.find((name) => name.toLowerCase().endsWith(".gguf"));
  if (gguf) return `${folder} is a folder; name the GGUF file in it, e.g. ${folder.replace(/\/+$/, "")}/${gguf}`;
  if (files.some((name) => CHECKPOINT_FILE.test(name))) {
    return (
      `${folder} is a Hugging Face model folder, and this server runs GGUF files: convert it with llama.cpp's ` +
      `converter, python convert_hf_to_gguf.py ${shellWord(folder)} --outfile bge-m3-f16.gguf --outtype f16 ` +
      `(or --outtype q8_0 for a file half the size), and name that file`
    );
  }
  return `${folder} is a folder; this server needs a GGUF file: ${GGUF_FORMS}`;
}

/**
 * Checks EMBEDDING_MODEL once at start and maps it to what resolveModel takes: a local path, an hf:
 * URI or a URL. Values only the seed's SentenceTransformer understood (another Hugging Face id, a
 * checkpoint folder) throw a ModelError saying what to set instead, before anything is downloaded.
 */
export function checkModelReference(reference: string): string {
  const value = reference.trim();
  if (SEED_MODEL_NAMES.has(value.toLowerCase())) return DEFAULT_MODEL_URI;
  if (isRemoteModel(value)) {
    remoteModel(value, "."); // throws for an hf: URI or URL that names no file
    return value;
  }
  const info = statOrUndefined(value);
  if (info?.isDirectory()) throw new ModelError(folderProblem(value));
  if (!info && HUGGING_FACE_ID.test(value) && !value.toLowerCase().endsWith(".gguf")) {
    throw new ModelError(
      `"${value}" is a Hugging Face model id (and no local file), and this server runs GGUF files: name ` +
        `${GGUF_FORMS}; BAAI/bge-m3 (or no value) means the default, ${DEFAULT_MODEL_URI}`,
    );
  }
  return value;
}
