// Where the build reads from: the checkout's native/ folder and the installed npm packages it builds with.
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BuildError } from "./log.js";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const nativeDir = path.join(root, "native");
const require = createRequire(path.join(root, "package.json"));

/** Root folder of an installed package (works for packages whose "exports" hide package.json). */
export function packageDir(name: string): string {
  let dir = path.dirname(require.resolve(name));
  for (;;) {
    const manifest = path.join(dir, "package.json");
    if (fs.existsSync(manifest) && JSON.parse(fs.readFileSync(manifest, "utf8")).name === name) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new BuildError(`cannot locate the ${name} package`);
    dir = parent;
  }
}
