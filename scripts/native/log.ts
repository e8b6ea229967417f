// The build's log lines (stderr, "[native] ...") and the error that stops it with a message of its own.
import fs from "node:fs";

/** A failure the build explains itself (no stack trace in the log line). */
export class BuildError extends Error {}

export function log(message: string): void {
  process.stderr.write(`[native] ${message}\n`);
}

/** The last `lines` lines of a build log, shown when a required build fails. */
export function tailOf(file: string, lines: number): string {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}
