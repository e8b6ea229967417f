// The tools the build needs (cmake >= 3.19, a C++ compiler, git, nvcc for CUDA; ninja where there is one),
// found and checked before anything runs; their versions are part of the cache key.
import { probe } from "./exec.js";
import { BuildError, log } from "./log.js";
import { BuildOptions, cross } from "./options.js";

export interface Tools {
  /** first lines of `--version` */
  readonly cmakeVersion: string;
  readonly cxxVersion: string;
  /** "" without CUDA */
  readonly nvccVersion: string | undefined;
}

export function findTools(options: BuildOptions): Tools {
  const { gpu, cpu, cudaArchs } = options;
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
  return { cmakeVersion, cxxVersion, nvccVersion };
}
