// Runs the tap suite and ends with one plain "N passed, N failed" line that any CI can read.
import { spawn } from "node:child_process";

const child = spawn("npx", ["tap", ...process.argv.slice(2)], { stdio: ["inherit", "pipe", "inherit"] });
let tail = "";
child.stdout.on("data", (chunk) => {
  process.stdout.write(chunk);
  tail = (tail + chunk.toString()).slice(-4096);
});
child.on("close", (code) => {
  const summary = [...tail.matchAll(/# \{ ?total: (\d+)(?:, pass: (\d+))?(?:, fail: (\d+))?[^}]*\}/g)].at(-1);
  if (summary) {
    const passed = Number(summary[2] ?? 0);
    const failed = Number(summary[3] ?? 0);
    process.stdout.write(`\n${passed} passed, ${failed} failed\n`);
  }
  process.exit(code ?? 1);
});
