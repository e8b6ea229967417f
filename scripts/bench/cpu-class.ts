/**
 * The CPU class a measurement ran on, and which weight-product kernel each quantised type took there, so
 * every printed figure says where it holds (an AVX512-VNNI host and an AVX2-only host differ ~3x on
 * Q8_0 weight products).
 */
import fs from "node:fs";
import os from "node:os";
import { loadAddon } from "../../src/engine/native/load-addon.js";

/** /proc/cpuinfo flags that decide our kernels, as printed names. */
const KERNEL_FLAGS: Readonly<Record<string, string>> = {
  avx2: "AVX2",
  fma: "FMA",
  f16c: "F16C",
  avx512f: "AVX512F",
  avx512_vnni: "AVX512-VNNI",
  avx_vnni: "AVX-VNNI",
  asimddp: "NEON-dotprod",
  i8mm: "i8mm",
};

export interface CpuClass {
  model: string;
  cores: number;
  flags: string[];
  /** our int8 kernel compiled into the native addon's CPU backend ("avx2", "avx-vnni", "avx512-vnni"), if any */
  int8Kernel: string | undefined;
  /** attention products besides F32 compiled into that backend (int16 "avx2", bf16 "avx512-bf16"), if any: what
   * ATTENTION_PRECISION=auto takes for quantised weights */
  attentionApprox: string | undefined;
}

export function cpuClass(): CpuClass {
  const cpuinfo = fs.existsSync("/proc/cpuinfo") ? fs.readFileSync("/proc/cpuinfo", "utf8") : "";
  const present = new Set((/^(?:flags|Features)\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? "").trim().split(/\s+/));
  const systemInfo = loadAddon()?.systemInfo() ?? "";
  return {
    model: os.cpus()[0]?.model ?? "unknown",
    cores: os.availableParallelism(),
    flags: Object.entries(KERNEL_FLAGS).filter(([flag]) => present.has(flag)).map(([, name]) => name),
    int8Kernel: /BGE_M3_INT8 = ([\w-]+)/.exec(systemInfo)?.[1],
    attentionApprox: /BGE_M3_FA_INT16 = /.test(systemInfo) ? "int16" : /BGE_M3_FA_BF16 = /.test(systemInfo) ? "bf16" : undefined,
  };
}

/** The kernel that multiplies weights of this GGUF type on this host (native engine). */
export function weightKernel(cpu: CpuClass, ggmlType: string): string {
  if (cpu.int8Kernel && ["Q8_0", "Q6_K", "Q4_K"].includes(ggmlType)) return `ours, int8 ${cpu.int8Kernel}`;
  return "ggml's";
}

export function describeCpu(cpu: CpuClass): string {
  const absent = Object.values(KERNEL_FLAGS).filter((name) => !cpu.flags.includes(name));
  return `CPU: ${cpu.model}, ${cpu.cores} cores; has ${cpu.flags.join(", ") || "none of the flags we use"}; ` +
    `lacks ${absent.join(", ")}. Native int8 weight kernel: ${cpu.int8Kernel ?? "none (ggml's own products)"}. ` +
    `Attention products for quantised weights (ATTENTION_PRECISION=auto): ${cpu.attentionApprox ?? "f32 (no int16 or bf16 in this build)"}.`;
}
