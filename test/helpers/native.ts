import type { Test } from "tap";
import type { NativeAddon } from "../../src/engine/native/addon-types.js";
import { loadAddon, nativeAddonLoadError } from "../../src/engine/native/load-addon.js";

/**
 * The native addon for a test file, or undefined with the file planned to zero tests and the reason.
 * Where the addon must exist (BGE_M3_REQUIRE_NATIVE=1, which .ci/run sets when a C++ compiler and
 * CMake are present) a missing addon is a failure instead of a skip.
 */
export function nativeAddonOrSkip(t: Test): NativeAddon | undefined {
  const addon = loadAddon();
  if (addon) return addon;
  const reason = `native addon not built (${nativeAddonLoadError()}); run npm run build:native`;
  if (process.env.BGE_M3_REQUIRE_NATIVE === "1") t.fail(`${reason}; BGE_M3_REQUIRE_NATIVE=1 requires it`);
  else t.plan(0, reason);
  return undefined;
}
