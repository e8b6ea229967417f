// Running the build's tools: a quick probe that answers with the tool's output, and a long run logged to a file.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import { BuildError } from "./log.js";
import { root } from "./paths.js";

/** Runs a tool synchronously; returns its stdout, or undefined when it is missing or fails. */
export function probe(command: string, args: readonly string[], cwd = root): string | undefined {
  const result = spawnSync(command, args, { cwd, encoding: "utf8" });
  if (result.error || result.status !== 0) return undefined;
  return `${result.stdout}${result.stderr}`.trim();
}

export function run(command: string, args: readonly string[], logFile: string, cwd = root): Promise<void> {
  fs.appendFileSync(logFile, `\n$ ${[command, ...args].join(" ")}\n`);
  return new Promise((resolve, reject) => {
    const out = fs.openSync(logFile, "a");
    const child = spawn(command, args, { cwd, stdio: ["ignore", out, out] });
    child.on("error", (err) => {
      fs.closeSync(out);
      reject(new BuildError(`${command}: ${err.message}`));
    });
    child.on("close", (code, signal) => {
      fs.closeSync(out);
      if (code === 0) resolve();
      else reject(new BuildError(`${command} ${args[0] ?? ""} failed (${signal ?? `exit ${code}`}); see ${logFile}`));
    });
  });
}
