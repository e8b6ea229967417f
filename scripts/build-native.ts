/**
 * Builds our N-API addon (native/) against the llama.cpp source node-llama-cpp pins
 * (node_modules/node-llama-cpp/llama/gitRelease.bundle), patched with native/patches/*.patch.
 *
 * Everything heavy lives in a cache OUTSIDE the checkout (`$BGE_M3_NATIVE_CACHE`, else
 * `${XDG_CACHE_HOME:-~/.cache}/bge-m3-server/native`):
 *   src/<commit>-<patches>/        the extracted + patched llama.cpp source
 *   build/<configuration key>/     the CMake build tree (incremental: an addon edit recompiles the addon only)
 *   out/<artifact key>/            the finished addon (+ backend .so files in portable builds)
 *   logs/                          CMake/compiler output, one file per build
 * The artifact key covers the llama.cpp commit, our patches, native/ sources, the build scripts (this
 * one and scripts/native/), the flavour (cpu-native/cpu-portable/cuda + archs), compiler, cmake, host CPU
 * (native builds) and the Node ABI / N-API version, so fresh clones and repeated installs reuse it
 * (scripts/native/cache-key.ts). The result is copied to native/build/Release/ (git-ignored), where
 * src/engine/native/load-addon.ts looks for it.
 *
 * Environment:
 *   NATIVE_BUILD=auto|require|skip|force
 *                                 auto (default): build, or warn and exit 0 on any failure (the server then
 *                                 uses node-llama-cpp); require: build (cache allowed), fail loudly (CI on a
 *                                 machine with a compiler); skip: do nothing; force: rebuild, fail loudly
 *   NATIVE_GPU=none|cuda          default none
 *   NATIVE_CPU=native|portable|avx2|avx-vnni
 *                                 native (default): tuned for this CPU; portable: every x86/ARM CPU variant,
 *                                 picked at run time (for Docker images / distributable builds); avx2 (x86
 *                                 hosts): one static addon for AVX2 + FMA + F16C and nothing newer, so that an
 *                                 AVX-512 host measures the kernels AVX2-only CPUs get (`npm run bench` and
 *                                 `profile` print the kernel the build took); avx-vnni (x86 hosts with
 *                                 AVX-VNNI): the same plus AVX-VNNI, what Alder Lake and later client CPUs and
 *                                 Intel's E-core Xeons run
 *   CUDA_ARCHITECTURES="86;89"    CMAKE_CUDA_ARCHITECTURES for NATIVE_GPU=cuda (default: ggml's choice)
 *   NATIVE_JOBS=N                 parallel compile jobs (default: available cores)
 *   NATIVE_CMAKE_ARGS="..."       extra -D flags passed to CMake (part of the key)
 *   NATIVE_TARGET_ARCH=arm64      cross-compile for linux/arm64 on a Linux host of another architecture, with
 *                                 Debian's g++-aarch64-linux-gnu (native/toolchains/aarch64-linux-gnu.cmake;
 *                                 BGE_M3_CROSS_PREFIX names another one, default "aarch64-linux-gnu-"). Installs
 *                                 to native/build/linux-arm64/ (not Release/, which stays this host's addon),
 *                                 where an arm64 Node loads it from first. NATIVE_CPU=portable builds ggml's
 *                                 ARM variants (NEON, dotprod, fp16, SVE, i8mm, SVE2, SME; the best one is
 *                                 picked at run time); NATIVE_CPU=native cannot ask a CPU that is not here, so
 *                                 it builds one static addon for NATIVE_ARM_ARCH (default armv8.2-a+dotprod+fp16:
 *                                 Graviton 2+, Ampere Altra, Raspberry Pi 5). scripts/check-arm64.sh runs the
 *                                 native tests on it under qemu.
 */
import fs from "node:fs";
import path from "node:path";
import { cacheRoot, pruneCache } from "./native/cache.js";
import { artifactKeyOf, configKeyOf, flavourOf, hashFiles } from "./native/cache-key.js";
import { cmakeArgsOf, compileAddon } from "./native/cmake.js";
import { installArtifacts, installDir, isStored, sameInstalled, storeArtifacts } from "./native/install.js";
import { lockBuildDir } from "./native/lock.js";
import { BuildError, log, tailOf } from "./native/log.js";
import { buildOptions, cross, Mode, pick, targetArch } from "./native/options.js";
import { root } from "./native/paths.js";
import { bundleInfo, ourPatches, prepareSource } from "./native/source.js";
import { findTools } from "./native/toolchain.js";

async function build(mode: Mode): Promise<void> {
  const started = Date.now();
  const options = buildOptions();
  const tools = findTools(options);

  // stage: keys
  const info = bundleInfo();
  const patches = ourPatches(options.cpu);
  const patchesHash = hashFiles([...info.upstreamPatches, ...patches]);
  const flavour = flavourOf(options);
  const cmakeArgs = cmakeArgsOf(options);
  const configKey = configKeyOf(options, tools, info.commit, patchesHash, flavour, cmakeArgs);
  const key = artifactKeyOf(configKey);
  const cache = cacheRoot();
  const outDir = path.join(cache, "out", `${flavour}-${key}`);
  log(`flavour ${flavour}, key ${key}, cache ${cache}`);

  if (mode !== "force" && sameInstalled(key)) {
    log(`up to date: ${path.relative(root, installDir)}`);
    return;
  }
  if (mode !== "force" && isStored(outDir)) {
    installArtifacts(outDir);
    log(`cached build installed to ${path.relative(root, installDir)} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    return;
  }

  fs.mkdirSync(path.join(cache, "logs"), { recursive: true });
  const logFile = path.join(cache, "logs", `${flavour}-${key}-${new Date().toISOString().replace(/[:.]/g, "-")}.log`);
  fs.writeFileSync(logFile, `bge-m3 native build ${flavour} ${key}\n`);
  log(`log: ${logFile}`);

  // stage: source
  const srcDir = await prepareSource(cache, info, patches, patchesHash, logFile);

  // stage: configure, compile
  const buildDir = path.join(cache, "build", `${flavour}-${configKey}`);
  const unlock = await lockBuildDir(buildDir);
  try {
    // another process may have finished this very artifact while we waited
    if (mode !== "force" && isStored(outDir)) {
      installArtifacts(outDir);
      log(`cached build installed to ${path.relative(root, installDir)}`);
      return;
    }
    const { binDir, files } = await compileAddon(options, buildDir, srcDir, cmakeArgs, logFile);

    // stage: collect
    const durationS = Math.round((Date.now() - started) / 100) / 10;
    storeArtifacts(binDir, files, outDir, {
      key,
      flavour,
      gpu: options.gpu,
      cpu: options.cpu,
      cudaArchitectures: options.cudaArchs || null,
      llamaCpp: { release: info.release, commit: info.commit },
      patches: [...info.upstreamPatches, ...patches].map((p) => path.basename(p)),
      node: { abi: process.versions.modules, napi: process.versions.napi, platform: process.platform, arch: targetArch },
      ...(cross ? { crossCompiledOn: process.arch, armArch: options.armArch ?? null } : {}),
      compiler: tools.cxxVersion,
      cmake: tools.cmakeVersion,
      cmakeArgs,
      files,
      builtAt: new Date().toISOString(),
      durationS,
    });
    installArtifacts(outDir);
    pruneCache(cache, flavour, buildDir, outDir, srcDir);
    log(`built ${files.join(", ")} in ${durationS} s -> ${path.relative(root, installDir)}`);
  } finally {
    unlock();
  }
}

async function main(): Promise<void> {
  let mode: Mode;
  try {
    mode = pick<Mode>("NATIVE_BUILD", ["auto", "require", "skip", "force"], "auto");
  } catch (err) {
    log(String((err as Error).message));
    process.exit(1);
  }
  if (mode === "skip") {
    log("NATIVE_BUILD=skip: not building the native addon");
    return;
  }
  try {
    await build(mode);
  } catch (err) {
    const message = err instanceof BuildError ? err.message : String((err as Error)?.stack ?? err);
    if (mode === "force" || mode === "require") {
      log(`error: ${message}`);
      const logLine = /see (\S+\.log)/.exec(message);
      if (logLine) process.stderr.write(`${tailOf(logLine[1], 40)}\n`);
      process.exit(1);
    }
    const reason = message.split("\n")[0];
    if (fs.existsSync(path.join(installDir, "bge_m3_native.node"))) {
      log(`warning: native addon not rebuilt (${reason}); keeping the one already in ${path.relative(root, installDir)}.`);
    } else {
      log(`warning: native addon not built (${reason}); the server will use the node-llama-cpp engine.`);
    }
  }
}

await main();
