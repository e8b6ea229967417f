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

/** THREADS=0 means one thread per physical core. */
export function resolveThreads(requested: number): number {
  return requested > 0 ? requested : physicalCores();
}
