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
 * The artifact key covers the llama.cpp commit, our patches, native/ sources, this script, the
 * flavour (cpu-native/cpu-portable/cuda + archs), compiler, cmake, host CPU (native builds) and
 * the Node ABI / N-API version, so fresh clones and repeated installs reuse it. The result is copied to
 * native/build/Release/ (git-ignored), where src/engine/native/load-addon.ts looks for it.
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
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const nativeDir = path.join(root, "native");
// NATIVE_TARGET_ARCH other than this host's: a cross build (validated in build()), installed beside Release/
const targetArch = (process.env.NATIVE_TARGET_ARCH ?? "").trim().toLowerCase() || process.arch;
const cross = targetArch !== process.arch;
const installDir = path.join(nativeDir, "build", cross ? `${process.platform}-${targetArch}` : "Release");
const require = createRequire(path.join(root, "package.json"));

type Mode = "auto" | "require" | "skip" | "force";
type Gpu = "none" | "cuda";
type Cpu = "native" | "portable" | "avx2" | "avx-vnni";

class BuildError extends Error {}

function log(message: string): void {
  process.stderr.write(`[native] ${message}\n`);
}

function pick<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
  const value = (process.env[name] ?? "").trim().toLowerCase();
  if (value === "") return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new BuildError(`${name}=${value} is not one of ${allowed.join("|")}`);
  }
  return value as T;
}

function sha(...parts: (string | Buffer)[]): string {
  const hash = createHash("sha256");
  for (const part of parts) {
    hash.update(part);
    hash.update("\0");
  }
  return hash.digest("hex");
}

function filesUnder(dir: string): string[] {
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
function hashFiles(files: readonly string[], base?: string): string {
  return sha(...files.flatMap((file) => [base ? path.relative(base, file) : path.basename(file), fs.readFileSync(file)]));
}

/** Runs a tool synchronously; returns its stdout, or undefined when it is missing or fails. */
function probe(command: string, args: readonly string[], cwd = root): string | undefined {
  const result = spawnSync(command, args, { cwd, encoding: "utf8" });
  if (result.error || result.status !== 0) return undefined;
  return `${result.stdout}${result.stderr}`.trim();
}

function run(command: string, args: readonly string[], logFile: string, cwd = root): Promise<void> {
  fs.appendFileSync(logFile, `\n$ ${[command, ...args].join(" ")}\n`);
  return new Promise((resolve, reject) => {
    const out = fs.openSync(logFile, "a");
    const child = spawn(command, args, { cwd, stdio: ["ignore", out, out] });
    child.on("error", (err) => {
      fs.closeSync(out);
      reject(new BuildError(`${command}: ${err.message}`));
    });
    child.on("close", (code, signal) => {
      fs.closeSync(out);
      if (code === 0) resolve();
      else reject(new BuildError(`${command} ${args[0] ?? ""} failed (${signal ?? `exit ${code}`}); see ${logFile}`));
    });
  });
}

function tailOf(file: string, lines: number): string {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

function cacheRoot(): string {
  if (process.env.BGE_M3_NATIVE_CACHE) return path.resolve(process.env.BGE_M3_NATIVE_CACHE);
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache");
  return path.join(base, "bge-m3-server", "native");
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

/** Root folder of an installed package (works for packages whose "exports" hide package.json). */
function packageDir(name: string): string {
  let dir = path.dirname(require.resolve(name));
  for (;;) {
    const manifest = path.join(dir, "package.json");
    if (fs.existsSync(manifest) && JSON.parse(fs.readFileSync(manifest, "utf8")).name === name) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new BuildError(`cannot locate the ${name} package`);
    dir = parent;
  }
}

function bundleInfo(): { bundle: string; commit: string; release: string; upstreamPatches: string[] } {
  const llamaDir = path.join(packageDir("node-llama-cpp"), "llama");
  const bundle = path.join(llamaDir, "gitRelease.bundle");
  if (!fs.existsSync(bundle)) throw new BuildError(`node-llama-cpp ships no llama.cpp source bundle (${bundle})`);
  const heads = probe("git", ["bundle", "list-heads", bundle]);
  const commit = heads?.split(/\s+/)[0];
  if (!commit || !/^[0-9a-f]{40}$/.test(commit)) throw new BuildError(`cannot read ${bundle} (is git installed?)`);
  let release = "unknown";
  try {
    release = JSON.parse(fs.readFileSync(path.join(llamaDir, "llama.cpp.info.json"), "utf8")).tag ?? release;
  } catch {
    // optional
  }
  const patchDir = path.join(llamaDir, "patches");
  const upstreamPatches = fs.existsSync(patchDir)
    ? fs.readdirSync(patchDir).filter((f) => /\.(diff|patch)$/.test(f)).sort().map((f) => path.join(patchDir, f))
    : [];
  return { bundle, commit, release, upstreamPatches };
}

/** git apply: "applied", "already" (reverse applies) or throws. */
function applyPatch(srcDir: string, patch: string, logFile: string, required: boolean): "applied" | "already" | "skipped" {
  const name = path.basename(patch);
  const check = spawnSync("git", ["apply", "--check", "--ignore-whitespace", patch], { cwd: srcDir, encoding: "utf8" });
  if (check.status === 0) {
    const apply = spawnSync("git", ["apply", "--ignore-whitespace", patch], { cwd: srcDir, encoding: "utf8" });
    fs.appendFileSync(logFile, `git apply ${name}: ${apply.status}\n${apply.stderr}`);
    if (apply.status !== 0) throw new BuildError(`patch ${name} failed to apply:\n${apply.stderr}`);
    return "applied";
  }
  const reverse = spawnSync("git", ["apply", "--check", "--reverse", "--ignore-whitespace", patch], { cwd: srcDir });
  if (reverse.status === 0) return "already";
  fs.appendFileSync(logFile, `git apply --check ${name}:\n${check.stderr}`);
  if (required) throw new BuildError(`patch ${name} does not apply to the pinned llama.cpp:\n${check.stderr.trim()}`);
  return "skipped";
}

async function prepareSource(
  cache: string,
  info: ReturnType<typeof bundleInfo>,
  patches: readonly string[],
  patchesHash: string,
  logFile: string,
): Promise<string> {
  const srcDir = path.join(cache, "src", `${info.commit.slice(0, 12)}-${patchesHash.slice(0, 12)}`);
  if (fs.existsSync(path.join(srcDir, ".bge-m3-ready"))) {
    const now = new Date();
    fs.utimesSync(path.join(srcDir, ".bge-m3-ready"), now, now);
    log(`llama.cpp ${info.release} (${info.commit.slice(0, 12)}) source: cached`);
    return srcDir;
  }
  log(`extracting llama.cpp ${info.release} (${info.commit.slice(0, 12)}) from node-llama-cpp's bundle`);
  const tmp = `${srcDir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(srcDir), { recursive: true });
  await run("git", ["-c", "advice.detachedHead=false", "clone", "--quiet", info.bundle, tmp], logFile);
  const head = probe("git", ["rev-parse", "HEAD"], tmp);
  if (head !== info.commit) throw new BuildError(`bundle checked out ${head}, expected ${info.commit}`);

  // node-llama-cpp's own fixes first (it applies them to its builds too), then ours
  for (const patch of info.upstreamPatches) {
    const result = applyPatch(tmp, patch, logFile, false);
    log(`  node-llama-cpp patch ${path.basename(patch)}: ${result}`);
    if (result === "skipped") log(`  warning: ${path.basename(patch)} does not apply; continuing as node-llama-cpp does`);
  }
  for (const patch of patches) {
    const result = applyPatch(tmp, patch, logFile, true);
    log(`  patch ${path.basename(patch)}: ${result}`);
  }
  fs.writeFileSync(path.join(tmp, ".bge-m3-ready"), `${info.commit}\n${patchesHash}\n`);
  if (fs.existsSync(path.join(srcDir, ".bge-m3-ready"))) {
    fs.rmSync(tmp, { recursive: true, force: true });  // a parallel run got there first; it may be compiling it
  } else {
    fs.rmSync(srcDir, { recursive: true, force: true });  // a half-made leftover
    fs.renameSync(tmp, srcDir);
  }
  return srcDir;
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
function pruneCache(cache: string, flavour: string, keepBuild: string, keepOut: string, keepSrc: string): void {
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

/** One build per build tree at a time (parallel installs, or several checkouts sharing the cache). */
async function lockBuildDir(buildDir: string): Promise<() => void> {
  const lockFile = `${buildDir}.lock`;
  fs.mkdirSync(path.dirname(lockFile), { recursive: true });
  let announced = false;
  for (;;) {
    try {
      fs.writeFileSync(lockFile, String(process.pid), { flag: "wx" });
      return () => fs.rmSync(lockFile, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const owner = Number(fs.readFileSync(lockFile, "utf8").trim());
    let alive = false;
    try {
      if (owner > 0) {
        process.kill(owner, 0);
        alive = true;
      }
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code === "EPERM";
    }
    if (!alive) {
      fs.rmSync(lockFile, { force: true });
      continue;
    }
    if (!announced) {
      log(`waiting for another build of this configuration (pid ${owner}) to finish`);
      announced = true;
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
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

function installArtifacts(outDir: string): void {
  const staging = `${installDir}.tmp-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(installDir), { recursive: true });
  fs.cpSync(outDir, staging, { recursive: true, verbatimSymlinks: true });
  fs.rmSync(installDir, { recursive: true, force: true });
  fs.renameSync(staging, installDir);
}

function sameInstalled(key: string): boolean {
  try {
    const installed = JSON.parse(fs.readFileSync(path.join(installDir, "build-info.json"), "utf8"));
    return installed.key === key && fs.existsSync(path.join(installDir, "bge_m3_native.node"));
  } catch {
    return false;
  }
}

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

async function build(mode: Mode): Promise<void> {
  const started = Date.now();
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

  // stage: tools
  const cmakeVersion = probe("cmake", ["--version"])?.split("\n")[0];
  if (!cmakeVersion) throw new BuildError("cmake not found");
  const [major, minor] = (/(\d+)\.(\d+)/.exec(cmakeVersion) ?? ["", "0", "0"]).slice(1).map(Number);
  if (major < 3 || (major === 3 && minor < 19)) throw new BuildError(`${cmakeVersion} is too old (need >= 3.19)`);
  const cxx = cross ? `${process.env.BGE_M3_CROSS_PREFIX ?? "aarch64-linux-gnu-"}g++` : process.env.CXX || "c++";
  const cxxVersion = probe(cxx, ["--version"])?.split("\n")[0];
  if (!cxxVersion) {
    throw new BuildError(cross ? `no ${cxx} found (Debian: apt-get install g++-aarch64-linux-gnu)` : `no C++ compiler (${cxx}) found`);
  }
  if (!probe("git", ["--version"])) throw new BuildError("git not found (needed to extract the llama.cpp bundle)");
  const ninja = probe("ninja", ["--version"]) !== undefined;
  const nvccVersion = gpu === "cuda" ? probe(process.env.CUDACXX || "nvcc", ["--version"])?.split("\n").at(-1) : "";
  if (gpu === "cuda" && !nvccVersion) {
    throw new BuildError("NATIVE_GPU=cuda but nvcc was not found (put it on PATH or set CUDACXX; install the CUDA toolkit)");
  }
  if (gpu === "cuda" && cpu === "native" && !cudaArchs) {
    // GGML_NATIVE makes ggml compile for CMAKE_CUDA_ARCHITECTURES=native, which needs a GPU visible now
    const caps = probe("nvidia-smi", ["--query-gpu=compute_cap", "--format=csv,noheader"]);
    if (!caps || !/\d/.test(caps)) {
      throw new BuildError(
        "NATIVE_GPU=cuda with NATIVE_CPU=native compiles for the GPUs of this machine, and none is visible; " +
          "set CUDA_ARCHITECTURES (e.g. \"75;80;86;89;90\") or use NATIVE_CPU=portable",
      );
    }
  }
  log(`tools: ${cmakeVersion}; ${cxxVersion}${nvccVersion ? `; ${nvccVersion}` : ""}${ninja ? "; ninja" : "; make"}`);

  // stage: keys
  const info = bundleInfo();
  const patchesIn = (dir: string) => fs.existsSync(dir)
    ? fs.readdirSync(dir).filter((f) => f.endsWith(".patch")).sort().map((f) => path.join(dir, f))
    : [];
  // native/patches/<arch>-portable/ (arm64-portable/: ggml's list of ARM CPU variants): after the common ones,
  // for portable builds of that target only, so that other builds' sources and cache keys do not move
  const patches = [
    ...patchesIn(path.join(nativeDir, "patches")),
    ...(cpu === "portable" ? patchesIn(path.join(nativeDir, "patches", `${targetArch}-portable`)) : []),
  ];
  const patchesHash = hashFiles([...info.upstreamPatches, ...patches]);
  // also a folder name: no ';' (CMake list separator) in it
  const flavour = cross
    ? `${process.platform}-${targetArch}-cpu-${armArch ? armArch.replace(/[^0-9A-Za-z.-]+/g, "_") : cpu}`
    : `cpu-${cpu}${gpu === "cuda" ? `+cuda${cudaArchs ? `-${cudaArchs.replace(/[^0-9A-Za-z-]+/g, "_")}` : ""}` : ""}`;
  const cmakeArgs = [
    `-DCMAKE_BUILD_TYPE=Release`,
    ...cpuArgs(cpu, armArch),
    `-DBGE_CPU_TARGET=${cpu}`,
    `-DGGML_CUDA=${gpu === "cuda" ? "ON" : "OFF"}`,
    ...(gpu === "cuda" && cudaArchs ? [`-DCMAKE_CUDA_ARCHITECTURES=${cudaArchs}`] : []),
    ...extraArgs,
  ];
  // (the parts of a host build are those before cross builds existed, so its key did not move)
  const configKey = sha(
    info.commit, patchesHash, flavour, cmakeArgs.join(" "), cmakeVersion, cxxVersion, nvccVersion ?? "", process.platform, targetArch,
    cpu === "native" && !cross ? hostCpuId() : "",
    ...(toolchain ? [hashFiles([toolchain])] : []),
  ).slice(0, 16);
  const sourcesHash = hashFiles([
    ...filesUnder(path.join(nativeDir, "src")),
    ...filesUnder(path.join(nativeDir, "kernels")),
    ...filesUnder(path.join(nativeDir, "cmake")),
    path.join(nativeDir, "CMakeLists.txt"),
  ], nativeDir);
  const scriptHash = hashFiles([fileURLToPath(import.meta.url)]);
  const key = sha(configKey, sourcesHash, scriptHash, `abi${process.versions.modules}`, `napi${process.versions.napi}`).slice(0, 16);
  const cache = cacheRoot();
  const outDir = path.join(cache, "out", `${flavour}-${key}`);
  log(`flavour ${flavour}, key ${key}, cache ${cache}`);

  if (mode !== "force" && sameInstalled(key)) {
    log(`up to date: ${path.relative(root, installDir)}`);
    return;
  }
  if (mode !== "force" && fs.existsSync(path.join(outDir, "build-info.json"))) {
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

  // stage: configure
  const buildDir = path.join(cache, "build", `${flavour}-${configKey}`);
  const unlock = await lockBuildDir(buildDir);
  try {
    // another process may have finished this very artifact while we waited
    if (mode !== "force" && fs.existsSync(path.join(outDir, "build-info.json"))) {
      installArtifacts(outDir);
      log(`cached build installed to ${path.relative(root, installDir)}`);
      return;
    }
    await compile();
  } finally {
    unlock();
  }

  async function compile(): Promise<void> {
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
    const toolchainArgs = toolchain ? [`-DCMAKE_TOOLCHAIN_FILE=${toolchain}`] : [];
    await run(process.execPath, [...cmakeJs, "configure", "--", `-DLLAMA_CPP_DIR=${srcDir}`, ...toolchainArgs, ...cmakeArgs], logFile);

    // stage: compile
    log(`compiling with ${jobs} job(s) (a cold build takes minutes; progress in the log)`);
    const binDir = path.join(buildDir, "bin");
    fs.rmSync(path.join(binDir, "bge_m3_native.node"), { force: true });
    await run(process.execPath, [...cmakeJs, "build", "--target", "bge_m3_native", "--parallel", String(jobs)], logFile);

    // stage: collect
    const files = fs.readdirSync(binDir).filter((f) => f === "bge_m3_native.node" || /\.(so|dylib|dll)(\.\d+)*$/.test(f));
    if (!files.includes("bge_m3_native.node")) throw new BuildError(`build produced no bge_m3_native.node; see ${logFile}`);
    const staging = `${outDir}.tmp-${process.pid}`;
    fs.rmSync(staging, { recursive: true, force: true });
    fs.mkdirSync(staging, { recursive: true });
    for (const file of files) fs.cpSync(path.join(binDir, file), path.join(staging, file), { verbatimSymlinks: true });
    const durationS = Math.round((Date.now() - started) / 100) / 10;
    fs.writeFileSync(path.join(staging, "build-info.json"), `${JSON.stringify({
      key,
      flavour,
      gpu,
      cpu,
      cudaArchitectures: cudaArchs || null,
      llamaCpp: { release: info.release, commit: info.commit },
      patches: [...info.upstreamPatches, ...patches].map((p) => path.basename(p)),
      node: { abi: process.versions.modules, napi: process.versions.napi, platform: process.platform, arch: targetArch },
      ...(cross ? { crossCompiledOn: process.arch, armArch: armArch ?? null } : {}),
      compiler: cxxVersion,
      cmake: cmakeVersion,
      cmakeArgs,
      files,
      builtAt: new Date().toISOString(),
      durationS,
    }, null, 2)}\n`);
    fs.rmSync(outDir, { recursive: true, force: true });
    fs.renameSync(staging, outDir);
    installArtifacts(outDir);
    pruneCache(cache, flavour, buildDir, outDir, srcDir);
    log(`built ${files.join(", ")} in ${durationS} s -> ${path.relative(root, installDir)}`);
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
