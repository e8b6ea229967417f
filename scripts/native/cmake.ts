// CMake through cmake-js: the flags of each flavour, configuring the build tree and compiling the addon in it.
import fs from "node:fs";
import path from "node:path";
import { run } from "./exec.js";
import { BuildError, log } from "./log.js";
import { BuildOptions, Cpu, cross, targetArch } from "./options.js";
import { nativeDir, packageDir } from "./paths.js";

/** ggml's CMake switches for each CPU flavour (armArch: a cross build's one -march). */
function cpuArgs(cpu: Cpu, armArch: string | undefined): string[] {
  if (cpu === "portable") return ["-DBGE_PORTABLE=ON"];
  if (armArch) return ["-DGGML_NATIVE=OFF", `-DGGML_CPU_ARM_ARCH=${armArch}`];
  if (cpu === "avx2" || cpu === "avx-vnni") {
    // ggml's Haswell level (with AVX-VNNI: its alderlake variant), spelt out: our int8 and attention kernels then
    // compile their AVX2 or AVX-VNNI paths
    return ["-DGGML_NATIVE=OFF", "-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON", "-DGGML_BMI2=ON",
      "-DGGML_AVX512=OFF", "-DGGML_AVX512_VNNI=OFF", `-DGGML_AVX_VNNI=${cpu === "avx-vnni" ? "ON" : "OFF"}`];
  }
  return ["-DGGML_NATIVE=ON"];
}

/** Every -D flag of the build (part of the build tree's key). */
export function cmakeArgsOf(options: BuildOptions): string[] {
  const { cpu, gpu, cudaArchs, armArch, extraArgs } = options;
  return [
    `-DCMAKE_BUILD_TYPE=Release`,
    ...cpuArgs(cpu, armArch),
    `-DBGE_CPU_TARGET=${cpu}`,
    `-DGGML_CUDA=${gpu === "cuda" ? "ON" : "OFF"}`,
    ...(gpu === "cuda" && cudaArchs ? [`-DCMAKE_CUDA_ARCHITECTURES=${cudaArchs}`] : []),
    ...extraArgs,
  ];
}

/**
 * A build tree is shared by every checkout with the same configuration (the cache is per user), but CMake
 * refuses a tree configured from another checkout's native/. Forget that configuration, CMakeCache.txt,
 * and keep the objects: llama.cpp's sources sit in the shared cache, so their commands stay the same and
 * Ninja rebuilds only ours.
 */
function adoptBuildDir(buildDir: string): void {
  const cacheFile = path.join(buildDir, "CMakeCache.txt");
  if (!fs.existsSync(cacheFile)) return;
  const home = /^CMAKE_HOME_DIRECTORY:INTERNAL=(.*)$/m.exec(fs.readFileSync(cacheFile, "utf8"))?.[1];
  if (home === undefined || path.resolve(home) === path.resolve(nativeDir)) return;
  log(`build tree was configured from ${home}: reconfiguring it for ${nativeDir}`);
  fs.rmSync(cacheFile, { force: true });
}

/** Configures `buildDir` for the patched source in `srcDir` and compiles the addon; resolves with the files
 * to ship (the .node, and the backend libraries of portable and CUDA builds), all in `binDir`. */
export async function compileAddon(
  options: BuildOptions, buildDir: string, srcDir: string, cmakeArgs: readonly string[], logFile: string,
): Promise<{ binDir: string; files: string[] }> {
  // cmake-js drives CMake. native/package.json declares a Node-API addon (`binary.napi_versions`), so
  // cmake-js passes the node-api-headers and node-addon-api include dirs as CMAKE_JS_INC and downloads
  // nothing; without it, it would fetch Node's full headers from the network.
  const cmakeJs = [
    path.join(packageDir("cmake-js"), "bin", "cmake-js"), "--directory", nativeDir, "--out", buildDir,
    ...(cross ? ["--arch", targetArch] : []),
    ...(fs.existsSync(path.join(buildDir, "Makefile")) ? ["--prefer-make"] : []), // keep an existing tree's generator
  ];
  adoptBuildDir(buildDir);
  log(`configuring with cmake-js (${cmakeArgs.join(" ")})`);
  const toolchainArgs = options.toolchain ? [`-DCMAKE_TOOLCHAIN_FILE=${options.toolchain}`] : [];
  await run(process.execPath, [...cmakeJs, "configure", "--", `-DLLAMA_CPP_DIR=${srcDir}`, ...toolchainArgs, ...cmakeArgs], logFile);

  log(`compiling with ${options.jobs} job(s) (a cold build takes minutes; progress in the log)`);
  const binDir = path.join(buildDir, "bin");
  fs.rmSync(path.join(binDir, "bge_m3_native.node"), { force: true });
  await run(process.execPath, [...cmakeJs, "build", "--target", "bge_m3_native", "--parallel", String(options.jobs)], logFile);

  const files = fs.readdirSync(binDir).filter((f) => f === "bge_m3_native.node" || /\.(so|dylib|dll)(\.\d+)*$/.test(f));
  if (!files.includes("bge_m3_native.node")) throw new BuildError(`build produced no bge_m3_native.node; see ${logFile}`);
  return { binDir, files };
}
