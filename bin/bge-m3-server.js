#!/usr/bin/env node
// The installed command: the compiled server (dist/, made by `npm run build`, shipped in the package),
// with the same flags and environment as `npm start -- ...` (`bge-m3-server --help`).
import fs from "node:fs";

const main = new URL("../dist/src/main.js", import.meta.url);
if (!fs.existsSync(main)) {
  // only in a checkout that was never built: the packed package always has dist/ (prepack builds it)
  process.stderr.write("error: dist/ is not built; run `npm run build` (or `npm start -- ...` from a checkout)\n");
  process.exit(1);
}
await import(main.href);
