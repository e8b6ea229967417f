/**
 * `npm run pack-check`: what a user without a checkout does, so the installable command never silently
 * breaks. Packs the package (`npm pack`, which builds dist/ first), installs the tarball into an empty
 * temporary prefix the way the README says (`npm install -g --prefix <tmp> --allow-scripts=...`; our
 * install script builds the addon, a cache hit on a machine that built the same sources), then:
 *   1. starts the installed `bge-m3-server` with ENGINE=native on a generated model (TINY unless
 *      EMBEDDING_MODEL is set), embeds one string over HTTP, stops it with SIGTERM (exit 0 expected);
 *   2. hides the installed addon and starts it again with ENGINE=native: it must refuse to start with
 *      the loader's reason (exit 1), not fall back.
 * Offline by default (every dependency comes from npm's cache, pinned by the npm-shrinkwrap.json that
 * `npm pack` writes); PACK_CHECK_ONLINE=1 lets npm reach the registry. --keep leaves the folder.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { TINY, testModel } from "../test/helpers/models.js";
import { startServerCommand } from "./bench/server-process.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const keep = process.argv.includes("--keep");
const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { name: string };

function step(message: string): void {
  process.stdout.write(`[pack-check] ${message}\n`);
}

/** Runs npm, failing the check with its output when it fails. */
function npm(args: readonly string[], cwd: string, env: Record<string, string> = {}): string {
  const started = performance.now();
  const result = spawnSync("npm", [...args], { cwd, encoding: "utf8", env: { ...process.env, ...env } });
  if (result.status !== 0) throw new Error(`npm ${args.join(" ")} failed:\n${result.stdout}${result.stderr}`);
  step(`npm ${args[0]}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return `${result.stdout}${result.stderr}`;
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), "bge-m3-pack-check-"));
try {
  const model = process.env.EMBEDDING_MODEL ?? (await testModel(TINY));

  // --ignore-scripts for pack itself is not wanted: prepack builds dist/ and writes the shrinkwrap
  const tarball = path.join(work, npm(["pack", "--pack-destination", work, "--silent"], root).trim().split("\n").at(-1)!);
  const prefix = path.join(work, "prefix");
  const offline = process.env.PACK_CHECK_ONLINE === "1" ? "--prefer-offline" : "--offline";
  // NATIVE_BUILD=require: the addon must build (or come from the cache) and a failure fails the install
  const install = npm(
    ["install", "-g", "--prefix", prefix, offline, "--no-audit", "--no-fund", "--foreground-scripts", `--allow-scripts=${pkg.name}`, tarball],
    work, { NATIVE_BUILD: "require" },
  );
  for (const line of install.split("\n")) if (line.startsWith("[native]")) step(line);
  const command = path.join(prefix, "bin", "bge-m3-server");
  const installed = path.join(prefix, "lib", "node_modules", pkg.name);
  const env = { ENGINE: "native", EMBEDDING_MODEL: model, MODEL_DIR: path.join(work, "models") };

  // 1. serves: one string embedded over HTTP, then a clean stop
  const server = await startServerCommand(command, [], env, 120_000);
  step(`healthy after ${server.secondsToHealthy.toFixed(1)} s`);
  const response = await fetch(`${server.url}/v1/embeddings`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ input: "installed from the tarball" }),
  });
  const body = (await response.json()) as { data?: { embedding: number[] }[] };
  const vector = body.data?.[0]?.embedding;
  if (response.status !== 200 || !vector?.length) throw new Error(`embedding failed: ${response.status} ${JSON.stringify(body)}`);
  step(`embedded one string: ${vector.length} dimensions`);
  const stopping = performance.now();
  const exit = await server.stop();
  if (exit.code !== 0) throw new Error(`the server exited with ${exit.code ?? exit.signal} on SIGTERM`);
  step(`stopped cleanly in ${((performance.now() - stopping) / 1000).toFixed(1)} s`);

  // 2. ENGINE=native without a loadable addon refuses to start, with the loader's reason
  const addon = path.join(installed, "native", "build", "Release", "bge_m3_native.node");
  fs.renameSync(addon, `${addon}.hidden`);
  const refused = await startServerCommand(command, [], env, 120_000).then(
    async (unexpected) => {
      await unexpected.stop();
      throw new Error("ENGINE=native started without the addon");
    },
    (error: Error) => error.message,
  );
  if (!refused.includes("ENGINE=native but the native addon cannot be loaded")) throw new Error(`unexpected refusal: ${refused}`);
  step("without the addon, ENGINE=native refuses to start");
  step("ok");
} finally {
  if (keep) step(`kept ${work}`);
  else fs.rmSync(work, { recursive: true, force: true });
}
