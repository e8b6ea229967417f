import fs from "node:fs";
import os from "node:os";

/**
 * Physical cores this process may use: llama.cpp's threads spin while they wait, so more threads than
 * cores (SMT siblings, or another process's cores) make it many times slower, not faster.
 */
export function physicalCores(): number {
  const usable = os.availableParallelism();
  try {
    const cores = new Set<string>();
    let physical = "0";
    for (const line of fs.readFileSync("/proc/cpuinfo", "utf8").split("\n")) {
      const [key, value] = line.split(":").map((s) => s?.trim());
      if (key === "physical id") physical = value;
      else if (key === "core id") cores.add(`${physical}:${value}`);
    }
    if (cores.size > 0) return Math.max(1, Math.min(cores.size, usable));
  } catch {
    // not Linux: no /proc/cpuinfo
  }
  return Math.max(1, usable);
}

/**
 * Whole CPUs a container's quota allows (cgroup v2 `cpu.max`, e.g. a Kubernetes CPU limit), rounded down
 * (at least 1): ggml's threads spin while they wait, so a thread beyond the quota gets the whole group
 * throttled rather than adding work. Undefined when there is no quota. Node's own core count sees every
 * core of the host.
 */
export function cgroupCpuLimit(cpuMax = "/sys/fs/cgroup/cpu.max"): number | undefined {
  try {
    const [quota, period] = fs.readFileSync(cpuMax, "utf8").trim().split(/\s+/);
    if (quota === "max" || !period) return undefined;
    return Math.max(1, Math.floor(Number(quota) / Number(period)));
  } catch {
    return undefined;
  }
}

/** THREADS=0 means one thread per physical core, within the container's CPU quota. */
export function resolveThreads(requested: number): number {
  if (requested > 0) return requested;
  return Math.min(physicalCores(), cgroupCpuLimit() ?? Number.POSITIVE_INFINITY);
}
