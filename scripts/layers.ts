/**
 * The dependency rule of `src/`: its folders in one order, each allowed to import itself and the folders
 * after it, never one before it; so no two folders import each other. `test/layers.test.ts` checks every
 * source file against it (CI runs it with the suite); `npx tsx scripts/layers.ts` prints what breaks it.
 *
 * main (src/*.ts) -> http -> service -> metrics -> config -> embedding -> model -> engine: routes reach the
 * pipeline (embedding) only through its face, the engine knows nothing of HTTP, config or the model files.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const LAYERS = ["main", "http", "service", "metrics", "config", "embedding", "model", "engine"] as const;

export interface SourceFile {
  /** Relative to `src/`, with forward slashes. */
  readonly path: string;
  readonly text: string;
}

/** `src/` relative path -> its layer: the first folder, or `main` for files at the top. */
export function layerOf(relative: string): string {
  const parts = relative.split("/");
  return parts.length === 1 ? "main" : parts[0];
}

const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["'](\.{1,2}\/[^"']+)["']/g;

/** One line per import that breaks the rule (an unknown folder breaks it too). */
export function layerViolations(files: readonly SourceFile[]): string[] {
  const rank = new Map<string, number>(LAYERS.map((name, i) => [name, i]));
  const violations: string[] = [];
  for (const file of files) {
    const from = layerOf(file.path);
    for (const [, specifier] of file.text.matchAll(IMPORT)) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file.path), specifier));
      if (target.startsWith("..")) {
        violations.push(`${file.path}: imports ${specifier}, outside src/`);
        continue;
      }
      const to = layerOf(target);
      const fromRank = rank.get(from);
      const toRank = rank.get(to);
      if (fromRank === undefined || toRank === undefined) violations.push(`${file.path}: folder ${fromRank === undefined ? from : to} has no place in LAYERS`);
      else if (toRank < fromRank) violations.push(`${file.path}: ${from} imports ${to} (${specifier}), a folder above it`);
    }
  }
  return violations;
}

/** Every .ts and .mjs file under `root`. */
export function readSources(root: string): SourceFile[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.(ts|mjs)$/.test(entry.name))
    .map((entry) => {
      const full = path.join(entry.parentPath, entry.name);
      return { path: path.relative(root, full).split(path.sep).join("/"), text: readFileSync(full, "utf8") };
    });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const violations = layerViolations(readSources(path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "src")));
  process.stdout.write(violations.length === 0 ? "src/ keeps its layers\n" : `${violations.join("\n")}\n`);
  process.exitCode = violations.length === 0 ? 0 : 1;
}
