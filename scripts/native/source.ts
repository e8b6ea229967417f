// The llama.cpp source the addon builds against: node-llama-cpp's git bundle of the commit it pins, extracted
// into the cache and patched with node-llama-cpp's fixes and then ours (native/patches/*.patch).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { probe, run } from "./exec.js";
import { BuildError, log } from "./log.js";
import { Cpu, targetArch } from "./options.js";
import { nativeDir, packageDir } from "./paths.js";

export interface LlamaSource {
  readonly bundle: string;
  readonly commit: string;
  readonly release: string;
  /** node-llama-cpp's own fixes, applied before ours */
  readonly upstreamPatches: readonly string[];
}

export function bundleInfo(): LlamaSource {
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

/** Our patches for a build of this CPU flavour, in the order they apply. */
export function ourPatches(cpu: Cpu): string[] {
  const patchesIn = (dir: string) => fs.existsSync(dir)
    ? fs.readdirSync(dir).filter((f) => f.endsWith(".patch")).sort().map((f) => path.join(dir, f))
    : [];
  // native/patches/<arch>-portable/ (arm64-portable/: ggml's list of ARM CPU variants): after the common ones,
  // for portable builds of that target only, so that other builds' sources and cache keys do not move
  return [
    ...patchesIn(path.join(nativeDir, "patches")),
    ...(cpu === "portable" ? patchesIn(path.join(nativeDir, "patches", `${targetArch}-portable`)) : []),
  ];
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

/** The patched source in the cache (src/<commit>-<patches>/), extracted and patched unless it is there already. */
export async function prepareSource(
  cache: string,
  info: LlamaSource,
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
