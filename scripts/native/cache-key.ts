// The cache's keys. The build tree's (configKey) covers what configures it: the llama.cpp commit, the patches,
// the flavour and CMake flags, the compiler, cmake and nvcc versions, the target, the host CPU (native builds)
// and the cross toolchain file. The artifact's (key) adds what only recompiles: native/'s own sources, the
// build scripts (scripts/build-native.ts and all of scripts/native/), the Node ABI and N-API version.
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BuildOptions, cross, targetArch } from "./options.js";
import { nativeDir, root } from "./paths.js";
import { Tools } from "./toolchain.js";

export function sha(...parts: (string | Buffer)[]): string {
  const hash = createHash("sha256");
  for (const part of parts) {
    hash.update(part);
    hash.update("\0");
  }
  return hash.digest("hex");
}

export function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(full));
    else if (entry.isFile()) out.push(full);
  }
  return out.sort();
}

/** Hash of files' contents and names; names relative to `base` (default: the file name alone), so the key
 * does not depend on where the checkout or node_modules live. */
export function hashFiles(files: readonly string[], base?: string): string {
  return sha(...files.flatMap((file) => [base ? path.relative(base, file) : path.basename(file), fs.readFileSync(file)]));
}

/** Host CPU identity: part of the key of GGML_NATIVE builds, so a cache restored on another CPU rebuilds. */
function hostCpuId(): string {
  try {
    const cpuinfo = fs.readFileSync("/proc/cpuinfo", "utf8");
    const flags = /^(flags|Features)\s*:(.*)$/m.exec(cpuinfo);
    if (flags) return flags[2].trim();
  } catch {
    // not Linux
  }
  return `${os.arch()} ${os.cpus()[0]?.model ?? "unknown"}`;
}

/** The build's name in the cache's folders (no ';', CMake's list separator, in it). */
export function flavourOf(options: BuildOptions): string {
  const { cpu, gpu, cudaArchs, armArch } = options;
  return cross
    ? `${process.platform}-${targetArch}-cpu-${armArch ? armArch.replace(/[^0-9A-Za-z.-]+/g, "_") : cpu}`
    : `cpu-${cpu}${gpu === "cuda" ? `+cuda${cudaArchs ? `-${cudaArchs.replace(/[^0-9A-Za-z-]+/g, "_")}` : ""}` : ""}`;
}

/** The build tree's key (16 hex digits). */
export function configKeyOf(
  options: BuildOptions, tools: Tools, commit: string, patchesHash: string, flavour: string, cmakeArgs: readonly string[],
): string {
  // (the parts of a host build are those before cross builds existed, so its key did not move)
  return sha(
    commit, patchesHash, flavour, cmakeArgs.join(" "), tools.cmakeVersion, tools.cxxVersion, tools.nvccVersion ?? "", process.platform, targetArch,
    options.cpu === "native" && !cross ? hostCpuId() : "",
    ...(options.toolchain ? [hashFiles([options.toolchain])] : []),
  ).slice(0, 16);
}

/** The finished addon's key (16 hex digits). */
export function artifactKeyOf(configKey: string): string {
  const sourcesHash = hashFiles([
    ...filesUnder(path.join(nativeDir, "src")),
    ...filesUnder(path.join(nativeDir, "kernels")),
    path.join(nativeDir, "CMakeLists.txt"),
  ], nativeDir);
  const scriptHash = hashFiles([path.join(root, "scripts", "build-native.ts"), ...filesUnder(path.join(root, "scripts", "native"))], root);
  return sha(configKey, sourcesHash, scriptHash, `abi${process.versions.modules}`, `napi${process.versions.napi}`).slice(0, 16);
}
