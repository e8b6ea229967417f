import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import t from "tap";
import { TINY, testModel } from "./helpers/models.js";
import { nativeAddonOrSkip } from "./helpers/native.js";

/**
 * The real server loads only the chosen engine's code: with ENGINE=native, node-llama-cpp's JS and native
 * binaries (~70 MB of RSS, docs/memory.md) stay out of the process, through start, a request and a
 * local model file. ENGINE=node-llama-cpp is the control that shows the recording sees them.
 */
if (nativeAddonOrSkip(t)) {
  const modelPath = await testModel(TINY);
  const dir = mkdtempSync(path.join(tmpdir(), "engine-modules-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));

  /** Module URLs the server resolved and the files it mapped, after one request. */
  const loadedBy = async (engine: string): Promise<{ modules: string[]; maps: string }> => {
    const file = path.join(dir, `${engine}.txt`);
    const child = spawn(process.execPath, ["--import", "tsx", "--import", "./test/support/record-modules.mjs", "src/main.ts"], {
      env: { ...process.env, PORT: "0", HOST: "127.0.0.1", DEVICE: "cpu", ENGINE: engine, EMBEDDING_MODEL: modelPath, LOG_LEVEL: "info", RECORD_MODULES_FILE: file },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stderr.on("data", (chunk) => (output += chunk));
    const exited = new Promise((resolve) => child.on("exit", resolve));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on("data", (chunk) => {
        output += chunk;
        if (output.includes("ready: POST")) resolve();
      });
      child.on("exit", (code) => reject(new Error(`exited early with ${code}: ${output}`)));
    });
    const port = Number(/listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1]);
    const response = await fetch(`http://127.0.0.1:${port}/v1/embeddings`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ input: "hello world" }),
    });
    t.equal(response.status, 200, `${engine}: a request is served`);
    const maps = readFileSync(`/proc/${child.pid}/maps`, "utf8");
    child.kill("SIGTERM");
    await exited;
    return { modules: readFileSync(file, "utf8").split("\n").filter(Boolean), maps };
  };

  const fromNodeLlamaCpp = (url: string) => /\/node_modules\/(@node-llama-cpp|node-llama-cpp)\//.test(url);

  t.test("ENGINE=native loads none of node-llama-cpp, JS or native", { skip: process.platform !== "linux" && "reads /proc" }, async (t) => {
    const { modules, maps } = await loadedBy("native");
    t.ok(modules.some((url) => url.endsWith("/src/engine/native/native-embedder.ts")), "the recording sees the native engine");
    t.same(modules.filter(fromNodeLlamaCpp), [], "no node-llama-cpp module");
    t.notMatch(maps, /llama-addon\.node|@node-llama-cpp/, "no node-llama-cpp binary mapped");
    t.match(maps, /bge_m3_native\.node/);
  });

  t.test("control: ENGINE=node-llama-cpp does load it", { skip: process.platform !== "linux" && "reads /proc" }, async (t) => {
    const { modules, maps } = await loadedBy("node-llama-cpp");
    t.ok(modules.some(fromNodeLlamaCpp), "node-llama-cpp's modules are recorded");
    t.match(maps, /llama-addon\.node/);
    t.notMatch(maps, /bge_m3_native\.node/, "and not our addon");
  });
}
