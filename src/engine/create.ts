import type { Embedder, EmbedderOptions } from "./types.js";
import { EngineUnavailableError } from "./errors.js";
import { isNativeAddonAvailable, nativeAddonLoadError } from "./native/load-addon.js";

export type EngineRequest = "auto" | "native" | "node-llama-cpp";

export interface CreateEmbedderOptions extends EmbedderOptions {
  readonly engine: EngineRequest;
  /** Told when `auto` falls back because the native addon is not built. */
  readonly onFallback?: (reason: string) => void;
}

/**
 * Each engine's module is imported only when that engine is chosen: node-llama-cpp's JS and native
 * binaries cost ~70 MB of RSS in a server that runs the native addon (docs/memory.md).
 */
async function loadNodeLlamaCppEmbedder(options: EmbedderOptions): Promise<Embedder> {
  const { loadNodeLlamaCppEmbedder: load } = await import("./node-llama-cpp/embedder.js");
  return load(options);
}

/** Picks the engine: the native addon when it is built (or asked for), node-llama-cpp otherwise. */
export async function createEmbedder(options: CreateEmbedderOptions): Promise<Embedder> {
  const { engine, onFallback, ...embedderOptions } = options;
  if (engine === "node-llama-cpp") return loadNodeLlamaCppEmbedder(embedderOptions);
  if (isNativeAddonAvailable()) {
    const { loadNativeEmbedder } = await import("./native/native-embedder.js");
    return loadNativeEmbedder(embedderOptions);
  }
  const reason = "the native addon is not built (npm run build:native)";
  // the loader's own reason (not built, or built but unloadable here: a missing library, another Node ABI),
  // so an image or install that must run the addon says what to fix instead of falling back
  if (engine === "native") throw new EngineUnavailableError(`ENGINE=native but the native addon cannot be loaded: ${nativeAddonLoadError()}`);
  onFallback?.(`${reason}; using the node-llama-cpp engine`);
  return loadNodeLlamaCppEmbedder(embedderOptions);
}
