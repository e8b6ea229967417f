/**
 * Which of our CPU kernels a native addon must have on this CPU, worked out from /proc/cpuinfo and the flavour the
 * addon was built as (NATIVE_CPU), not from what the addon reports: so a build that lost a kernel fails the tests
 * that compare the two. Mirrors native/kernels/int8_gemm_isa.h and flash_attn_isa.h, and the variants ggml's
 * portable build picks from (alderlake: AVX-VNNI without AVX-512; zen4, cooperlake, sapphirerapids: AVX512-BF16).
 */
import fs from "node:fs";
import type { NativeAddon } from "../../src/engine/native/addon-types.js";

export type Int8Kernel = "avx512-vnni" | "avx-vnni" | "avx2";
export type ApproxAttention = "int16" | "bf16";

export interface CpuKernels {
  /** our int8 weight-product kernel, or undefined for ggml's own */
  readonly int8: Int8Kernel | undefined;
  /** attention's products besides F32 (what ATTENTION_PRECISION=auto takes for quantised weights), if any */
  readonly attention: ApproxAttention | undefined;
}

/** The x86 feature flags of this CPU (empty off Linux or off x86: an arm64 process under qemu reads the host's). */
export function cpuFlags(): ReadonlySet<string> {
  const x86 = process.arch === "x64" || process.arch === "ia32";
  if (process.platform !== "linux" || !x86) return new Set();
  return new Set((/^flags\s*:(.*)$/m.exec(fs.readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "").trim().split(/\s+/));
}

/** What the addon must have here; undefined where this cannot be told (not Linux on x86). */
export function expectedCpuKernels(addon: NativeAddon, flags: ReadonlySet<string> = cpuFlags()): CpuKernels | undefined {
  if (flags.size === 0) return undefined;
  const avx2 = ["avx2", "fma", "f16c"].every((flag) => flags.has(flag));
  switch (addon.build.cpu) {
    case "avx2":
      return { int8: "avx2", attention: "int16" };
    case "avx-vnni":
      return { int8: "avx-vnni", attention: "int16" };
    default: // native or portable: the best this CPU has
      return {
        int8: flags.has("avx512f") && flags.has("avx512_vnni") ? "avx512-vnni"
          : avx2 && flags.has("avx_vnni") ? "avx-vnni"
          : avx2 ? "avx2"
          : undefined,
        attention: avx2 && !flags.has("avx512f") ? "int16"
          : ["avx512f", "avx512bw", "avx512_bf16"].every((flag) => flags.has(flag)) ? "bf16"
          : undefined,
      };
  }
}

/** What the addon's CPU backend reports it was compiled with (llama_print_system_info). */
export function reportedCpuKernels(addon: NativeAddon): CpuKernels {
  const info = addon.systemInfo();
  return {
    int8: /BGE_M3_INT8 = ([\w-]+)/.exec(info)?.[1] as Int8Kernel | undefined,
    attention: /BGE_M3_FA_INT16 = /.test(info) ? "int16" : /BGE_M3_FA_BF16 = /.test(info) ? "bf16" : undefined,
  };
}
