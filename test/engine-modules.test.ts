import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import t from "tap";
import { launchTestServer } from "../scripts/bench/server-process.js";
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
    const server = launchTestServer(
      { ENGINE: engine, EMBEDDING_MODEL: modelPath, RECORD_MODULES_FILE: file },
      ["--import", "tsx", "--import", "./test/support/record-modules.mjs", "src/main.ts"],
    );
    t.teardown(() => server.stop("SIGKILL"));
    await server.waitFor(/ready: POST/);
    const response = await fetch(`${await server.address()}/v1/embeddings`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ input: "hello world" }),
    });
    t.equal(response.status, 200, `${engine}: a request is served`);
    const maps = readFileSync(`/proc/${server.pid}/maps`, "utf8");
    await server.stop();
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
