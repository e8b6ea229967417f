// The build's settings, read from the environment (NATIVE_*, CUDA_ARCHITECTURES; documented in
// scripts/build-native.ts) and checked before anything runs.
import os from "node:os";
import path from "node:path";
import { BuildError } from "./log.js";
import { nativeDir } from "./paths.js";

export type Mode = "auto" | "require" | "skip" | "force";
export type Gpu = "none" | "cuda";
export type Cpu = "native" | "portable" | "avx2" | "avx-vnni";

// NATIVE_TARGET_ARCH other than this host's: a cross build (validated in buildOptions())
export const targetArch = (process.env.NATIVE_TARGET_ARCH ?? "").trim().toLowerCase() || process.arch;
export const cross = targetArch !== process.arch;

export function pick<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
  const value = (process.env[name] ?? "").trim().toLowerCase();
  if (value === "") return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new BuildError(`${name}=${value} is not one of ${allowed.join("|")}`);
  }
  return value as T;
}

export interface BuildOptions {
  readonly gpu: Gpu;
  readonly cpu: Cpu;
  /** CMAKE_CUDA_ARCHITECTURES, ';'-separated ("" = ggml's choice) */
  readonly cudaArchs: string;
  /** NATIVE_CMAKE_ARGS */
  readonly extraArgs: readonly string[];
  /** parallel compile jobs */
  readonly jobs: number;
  /** a cross build's CMake toolchain file */
  readonly toolchain: string | undefined;
  /** a cross build's one -march (NATIVE_CPU=native cannot ask a CPU that is not here) */
  readonly armArch: string | undefined;
}

export function buildOptions(): BuildOptions {
  const gpu = pick<Gpu>("NATIVE_GPU", ["none", "cuda"], "none");
  const cpu = pick<Cpu>("NATIVE_CPU", ["native", "portable", "avx2", "avx-vnni"], "native");
  const cudaArchs = (process.env.CUDA_ARCHITECTURES ?? "").trim().replace(/[\s,]+/g, ";");
  const extraArgs = (process.env.NATIVE_CMAKE_ARGS ?? "").split(/\s+/).filter(Boolean);
  const jobs = Math.max(1, Number(process.env.NATIVE_JOBS) || os.availableParallelism());
  if (cross && (targetArch !== "arm64" || process.platform !== "linux")) {
    throw new BuildError(`NATIVE_TARGET_ARCH=${targetArch}: cross-compiling is supported for arm64 from a Linux host only`);
  }
  if (cross && gpu !== "none") throw new BuildError("NATIVE_TARGET_ARCH=arm64 builds the CPU addon only (NATIVE_GPU=none)");
  if ((cpu === "avx2" || cpu === "avx-vnni") && (cross || process.arch !== "x64")) {
    throw new BuildError(`NATIVE_CPU=${cpu} is for x86-64 hosts (NATIVE_CPU=native or portable elsewhere)`);
  }
  const toolchain = cross ? path.join(nativeDir, "toolchains", "aarch64-linux-gnu.cmake") : undefined;
  // a cross build cannot probe the CPU it is for: NATIVE_CPU=native means one -march for it instead
  const armArch = cross && cpu === "native" ? (process.env.NATIVE_ARM_ARCH ?? "").trim() || "armv8.2-a+dotprod+fp16" : undefined;
  if (armArch !== undefined && !/^armv[0-9.]+-a(\+[0-9a-z]+)*$/.test(armArch)) {
    throw new BuildError(`NATIVE_ARM_ARCH=${armArch} is not an -march value such as armv8.2-a+dotprod`);
  }
  return { gpu, cpu, cudaArchs, extraArgs, jobs, toolchain, armArch };
}
