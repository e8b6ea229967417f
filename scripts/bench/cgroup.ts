import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import path from "node:path";

/**
 * A memory cgroup of our own with a hard limit, made directly in the cgroup filesystem (needs write access
 * to it, e.g. root in a VM or a container with its cgroup delegated): cgroup v2's memory.max where the
 * memory controller is on v2, else v1's memory.limit_in_bytes. The kernel OOM-kills inside the group when
 * its usage (anonymous memory AND page cache it charged) cannot be brought under the limit by reclaim,
 * the same accounting `podman run --memory` / `docker run --memory` get.
 */
export interface MemoryCgroup {
  readonly version: 1 | 2;
  readonly dir: string;
  /** file a process writes its own pid into to join */
  readonly procsFile: string;
  /** highest usage seen, bytes (v2 memory.peak needs Linux 5.19) */
  peakBytes(): number | undefined;
  /** OOM kills inside the group so far */
  oomKills(): number;
  remove(): void;
}

const read = (file: string) => readFileSync(file, "utf8").trim();
const field = (file: string, name: string) => Number(new RegExp(`^${name} (\\d+)$`, "m").exec(read(file))?.[1] ?? 0);

function v2Root(): string | undefined {
  for (const dir of ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]) {
    const controllers = path.join(dir, "cgroup.controllers");
    if (existsSync(controllers) && read(controllers).split(/\s+/).includes("memory")) return dir;
  }
  return undefined;
}

/** Throws with the reason when no memory cgroup can be made here. */
export function createMemoryCgroup(name: string, limitBytes: number): MemoryCgroup {
  const v2 = v2Root();
  if (v2) {
    // the group is made under the root; memory must be enabled for the root's children
    writeFileSync(path.join(v2, "cgroup.subtree_control"), "+memory");
    const dir = path.join(v2, name);
    mkdirSync(dir);
    writeFileSync(path.join(dir, "memory.max"), String(limitBytes));
    writeFileSync(path.join(dir, "memory.swap.max"), "0");
    return {
      version: 2,
      dir,
      procsFile: path.join(dir, "cgroup.procs"),
      peakBytes: () => (existsSync(path.join(dir, "memory.peak")) ? Number(read(path.join(dir, "memory.peak"))) : undefined),
      oomKills: () => field(path.join(dir, "memory.events"), "oom_kill"),
      remove: () => rmdirSync(dir),
    };
  }
  const v1 = "/sys/fs/cgroup/memory";
  if (!existsSync(path.join(v1, "memory.limit_in_bytes"))) throw new Error("no memory cgroup controller mounted (v1 or v2)");
  const dir = path.join(v1, name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, "memory.limit_in_bytes"), String(limitBytes));
  // memory + swap at the same limit: no swapping past it (absent when the kernel has no swap accounting)
  if (existsSync(path.join(dir, "memory.memsw.limit_in_bytes"))) writeFileSync(path.join(dir, "memory.memsw.limit_in_bytes"), String(limitBytes));
  return {
    version: 1,
    dir,
    procsFile: path.join(dir, "cgroup.procs"),
    peakBytes: () => Number(read(path.join(dir, "memory.max_usage_in_bytes"))),
    oomKills: () => field(path.join(dir, "memory.oom_control"), "oom_kill"),
    remove: () => rmdirSync(dir),
  };
}
