/**
 * Command-line options of the measuring scripts: `--help` (`-h`) prints the script's own
 * header comment, its usage, and exits 0; an unknown or malformed option prints what is wrong and that
 * usage and exits 2, instead of node:util's stack trace. The header comment stays the one description.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs, type ParseArgsConfig } from "node:util";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** The first doc comment of the script at `scriptUrl` (its import.meta.url), without the comment marks. */
export function scriptUsage(scriptUrl: string): string {
  const comment = /\/\*\*([\s\S]*?)\*\//.exec(readFileSync(fileURLToPath(scriptUrl), "utf8"))?.[1] ?? "";
  return comment.split("\n").map((line) => line.replace(/^\s*\* ?/, "")).join("\n").trim();
}

export function parseScriptOptions<const O extends Options>(scriptUrl: string, options: O) {
  const config = { options: { ...options, help: { type: "boolean", short: "h" } } } as const;
  let values: ReturnType<typeof parseArgs<typeof config>>["values"];
  try {
    values = parseArgs(config).values;
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${scriptUsage(scriptUrl)}\n`);
    process.exit(2);
  }
  if ((values as { help?: boolean }).help) {
    process.stdout.write(`${scriptUsage(scriptUrl)}\n`);
    process.exit(0);
  }
  return values;
}
