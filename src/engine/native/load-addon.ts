import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { NativeAddon } from "./addon-types.js";

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

/**
 * Where the addon is looked for: a cross build for this process's platform and architecture first
 * (scripts/build-native.ts installs NATIVE_TARGET_ARCH builds in native/build/<platform>-<arch>/, which
 * is how an arm64 Node under qemu finds the arm64 addon), then this host's own build in Release/.
 */
function nativeAddonCandidates(): string[] {
  const build = path.join(repoRoot(), "native", "build");
  return [path.join(build, `${process.platform}-${process.arch}`, ADDON_FILE), path.join(build, "Release", ADDON_FILE)];
}

let cached: { addon?: NativeAddon; error?: string } | undefined;

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
      cached = { addon };
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
