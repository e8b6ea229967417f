import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { NativeAddon, NativeBuildInfo } from "./addon-types.js";

/**
 * Finds and loads the addon built by scripts/build-native.ts (native/build/Release/). Returns undefined
 * (never throws) when it is not built or cannot be loaded here, so the server can fall back to
 * node-llama-cpp; `nativeAddonLoadError()` says why.
 */

const ADDON_FILE = "bge_m3_native.node";

function repoRoot(): string {
  // src/engine/native/load-addon.ts (tsx) or dist/src/engine/native/load-addon.js (tsc)
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(dir, "native", "CMakeLists.txt")) || fs.existsSync(path.join(dir, "native", "build"))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

/** Where the addon is looked for: $BGE_M3_NATIVE_ADDON (a .node file or its folder) first. */
export function nativeAddonCandidates(): string[] {
  const candidates: string[] = [];
  const override = process.env.BGE_M3_NATIVE_ADDON;
  if (override) candidates.push(override.endsWith(".node") ? override : path.join(override, ADDON_FILE));
  candidates.push(path.join(repoRoot(), "native", "build", "Release", ADDON_FILE));
  return candidates;
}

let cached: { addon?: NativeAddon; path?: string; error?: string } | undefined;

export function loadAddon(): NativeAddon | undefined {
  if (cached) return cached.addon;
  const require = createRequire(import.meta.url);
  const errors: string[] = [];
  for (const file of nativeAddonCandidates()) {
    if (!fs.existsSync(file)) {
      errors.push(`${file}: not built`);
      continue;
    }
    try {
      const addon = require(file) as NativeAddon;
      cached = { addon, path: file };
      return addon;
    } catch (error) {
      errors.push(`${file}: ${(error as Error).message}`);
    }
  }
  cached = { error: errors.join("; ") };
  return undefined;
}

export function isNativeAddonAvailable(): boolean {
  return loadAddon() !== undefined;
}

/** Why loadAddon() returned undefined (undefined when it loaded). */
export function nativeAddonLoadError(): string | undefined {
  loadAddon();
  return cached?.error;
}

/** The loaded addon's file and the build-info.json beside it. */
export function nativeAddonBuildInfo(): (NativeBuildInfo & { readonly path: string }) | undefined {
  if (!loadAddon() || !cached?.path) return undefined;
  try {
    const info = JSON.parse(fs.readFileSync(path.join(path.dirname(cached.path), "build-info.json"), "utf8")) as NativeBuildInfo;
    return { ...info, path: cached.path };
  } catch {
    return undefined;
  }
}
