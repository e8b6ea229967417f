import { readFileSync } from "node:fs";
import path from "node:path";

/**
 * Where a process's resident memory is, by mapping (/proc/<pid>/smaps): the model file's pages, the
 * native addon, node itself, other shared libraries, anonymous memory (V8 heap, malloc arenas, llama.cpp
 * buffers: smaps cannot tell these apart; the server's /metrics has the V8 part). Linux only.
 */
export interface RssBreakdown {
  /** kB resident per group */
  readonly groups: Record<string, number>;
  /** kB resident per file of the "other libraries" group, largest first */
  readonly libraries: [string, number][];
  readonly totalKb: number;
}

function group(name: string): string {
  if (name.endsWith(".gguf")) return "model file (mapped)";
  if (name.endsWith(".node")) return `addon ${path.basename(name)}`;
  if (name === "" || name.startsWith("[anon") || name === "[heap]") return "anonymous (heaps, buffers)";
  if (name === "[stack]" || name.startsWith("[v")) return "stack, vdso";
  if (/\/node$/.test(name)) return "node binary";
  if (/\.so(\.[\d.]+)?$/.test(name)) return "other libraries";
  return "other files";
}

export function rssBreakdown(pid: number): RssBreakdown {
  const groups: Record<string, number> = {};
  const libraries: Record<string, number> = {};
  let current = "";
  let totalKb = 0;
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    // a mapping's header: "start-end perms offset dev inode [path]"
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (header) {
      current = header[1].trim();
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (!rss) continue;
    const kb = Number(rss[1]);
    const name = group(current);
    groups[name] = (groups[name] ?? 0) + kb;
    if (name === "other libraries") libraries[path.basename(current)] = (libraries[path.basename(current)] ?? 0) + kb;
    totalKb += kb;
  }
  return { groups, libraries: Object.entries(libraries).sort((a, b) => b[1] - a[1]), totalKb };
}

/** VmRSS / VmHWM (peak) of a process in bytes, from /proc/<pid>/status. */
export function statusBytes(pid: number, field: "VmRSS" | "VmHWM"): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) * 1024 : 0;
}
