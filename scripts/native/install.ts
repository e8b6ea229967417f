// A finished build: stored in the cache (out/<flavour>-<key>/, with its build-info.json) and installed into
// the checkout (native/build/Release/, or native/build/<platform>-<arch>/ for a cross build), where
// src/engine/native/load-addon.ts looks for it.
import fs from "node:fs";
import path from "node:path";
import { cross, targetArch } from "./options.js";
import { nativeDir } from "./paths.js";

export const installDir = path.join(nativeDir, "build", cross ? `${process.platform}-${targetArch}` : "Release");

/** build-info.json, written next to the addon (the Dockerfiles and scripts/check-arm64.sh read it). */
export interface BuildInfo {
  readonly key: string;
  readonly flavour: string;
  readonly gpu: "none" | "cuda";
  readonly cpu: "native" | "portable" | "avx2" | "avx-vnni";
  readonly cudaArchitectures: string | null;
  readonly llamaCpp: { readonly release: string; readonly commit: string };
  readonly patches: readonly string[];
  readonly node: { readonly abi: string; readonly napi: string | undefined; readonly platform: string; readonly arch: string };
  /** cross builds only: the host's architecture, and the one -march (null: every ARM variant) */
  readonly crossCompiledOn?: string;
  readonly armArch?: string | null;
  readonly compiler: string;
  readonly cmake: string;
  readonly cmakeArgs: readonly string[];
  readonly files: readonly string[];
  readonly builtAt: string;
  readonly durationS: number;
}

/** The cache holds a finished build in `outDir`. */
export function isStored(outDir: string): boolean {
  return fs.existsSync(path.join(outDir, "build-info.json"));
}

/** Copies `files` from `binDir` into `outDir` with their build-info.json, all at once (staged, then renamed). */
export function storeArtifacts(binDir: string, files: readonly string[], outDir: string, info: BuildInfo): void {
  const staging = `${outDir}.tmp-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  for (const file of files) fs.cpSync(path.join(binDir, file), path.join(staging, file), { verbatimSymlinks: true });
  fs.writeFileSync(path.join(staging, "build-info.json"), `${JSON.stringify(info, null, 2)}\n`);
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.renameSync(staging, outDir);
}

export function installArtifacts(outDir: string): void {
  const staging = `${installDir}.tmp-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(installDir), { recursive: true });
  fs.cpSync(outDir, staging, { recursive: true, verbatimSymlinks: true });
  fs.rmSync(installDir, { recursive: true, force: true });
  fs.renameSync(staging, installDir);
}

/** The installed addon is the build of this key. */
export function sameInstalled(key: string): boolean {
  try {
    const installed = JSON.parse(fs.readFileSync(path.join(installDir, "build-info.json"), "utf8")) as BuildInfo;
    return installed.key === key && fs.existsSync(path.join(installDir, "bge_m3_native.node"));
  } catch {
    return false;
  }
}
