// The cache outside the checkout ($BGE_M3_NATIVE_CACHE, else ${XDG_CACHE_HOME:-~/.cache}/bge-m3-server/native)
// and its cleanup of what other configurations left there.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export function cacheRoot(): string {
  if (process.env.BGE_M3_NATIVE_CACHE) return path.resolve(process.env.BGE_M3_NATIVE_CACHE);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache");
  return path.join(base, "bge-m3-server", "native");
}

const HOUR_MS = 3600_000;

function lastUsed(dir: string, markers: readonly string[]): number {
  let newest = 0;
  for (const file of [dir, ...markers.map((m) => path.join(dir, m))]) {
    try {
      newest = Math.max(newest, fs.statSync(file).mtimeMs);
    } catch {
      // missing marker
    }
  }
  return newest;
}

/**
 * Best-effort cleanup of what other configurations left in the cache: sources unused for a day, build trees
 * of this flavour idle for an hour (another checkout may be building in one right now otherwise), and all
 * but the newest few outputs of this flavour.
 */
export function pruneCache(cache: string, flavour: string, keepBuild: string, keepOut: string, keepSrc: string): void {
  const now = Date.now();
  const ours = (dir: string) => dir.startsWith(`${flavour}-`) && /^[0-9a-f]{16}$/.test(dir.slice(flavour.length + 1));
  try {
    const srcRoot = path.join(cache, "src");
    for (const dir of fs.readdirSync(srcRoot)) {
      const full = path.join(srcRoot, dir);
      if (/^[0-9a-f]{12}-[0-9a-f]{12}$/.test(dir) && full !== keepSrc && now - lastUsed(full, [".bge-m3-ready"]) > 24 * HOUR_MS) {
        fs.rmSync(full, { recursive: true, force: true });
      }
    }
    const buildRoot = path.join(cache, "build");
    for (const dir of fs.readdirSync(buildRoot)) {
      const full = path.join(buildRoot, dir);
      if (ours(dir) && full !== keepBuild && now - lastUsed(full, [".ninja_log", "CMakeCache.txt", "Makefile"]) > HOUR_MS) {
        fs.rmSync(full, { recursive: true, force: true });
      }
    }
    const outRoot = path.join(cache, "out");
    const outs = fs.readdirSync(outRoot)
      .filter(ours)
      .map((dir) => path.join(outRoot, dir))
      .filter((dir) => dir !== keepOut)
      .sort((x, y) => fs.statSync(y).mtimeMs - fs.statSync(x).mtimeMs);
    for (const dir of outs.slice(4)) fs.rmSync(dir, { recursive: true, force: true });
  } catch {
    // best effort
  }
}
