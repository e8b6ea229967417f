import { copyFile, mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import t, { type Test } from "tap";
import { ConfigError, loadConfig } from "../src/config/load.js";
import { DEFAULT_M3_HEADS } from "../src/config/schema.js";
import { prepareHeads } from "../src/model/heads/prepare.js";
import { periodicProgress } from "../src/model/progress.js";
import type { DownloadProgress, HubAccess } from "../src/model/resolve.js";
import { writeRandomHeads } from "../scripts/heads/random-heads.js";
import { startFakeHub, type FakeHub } from "./support/hf-server.js";

const WIDTH = 16;
const dir = await mkdtemp(path.join(tmpdir(), "bge-m3-heads-download-"));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const files = await writeRandomHeads(path.join(dir, "source"), { width: WIDTH, dtype: "f16" });
const sizes = (await stat(files.sparse)).size + (await stat(files.colbert)).size;

/** HF_ENDPOINT and HF_TOKEN as the config passes them. */
const access = (endpoint: string, token = ""): HubAccess => ({ endpoint, token });

async function hubWith(t: Test, repoPath: string, token?: string): Promise<FakeHub> {
  const hub = await startFakeHub(
    {
      [`/${repoPath}/sparse_linear.pt`]: files.sparse,
      [`/${repoPath}/colbert_linear.pt`]: files.colbert,
    },
    { token },
  );
  t.teardown(() => hub.close());
  return hub;
}

/** A loopback server that answers each request with `handler` (hangs, cut bodies). */
async function rawServer(t: Test, handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

t.test("hf: heads download once into MODEL_DIR, with progress; a second start fetches nothing", async (t) => {
  const hub = await hubWith(t, "BAAI/bge-m3/resolve/main");
  const modelDir = path.join(dir, "models");
  const progress: DownloadProgress[] = [];
  const logged: string[] = [];
  const periodic = periodicProgress((percent) => logged.push(percent));
  const state = await prepareHeads(DEFAULT_M3_HEADS, {
    modelDir,
    hub: access(hub.endpoint),
    expectedHiddenSize: WIDTH,
    onProgress: (p) => {
      progress.push(p);
      periodic(p);
    },
  });
  t.ok(state.available, JSON.stringify(state));
  if (!state.available) return;
  t.equal(state.heads.hiddenSize, WIDTH);
  t.equal(state.source, `hf:BAAI/bge-m3 (${path.resolve(modelDir, "hf--BAAI--bge-m3")})`);
  t.same((await readdir(path.join(modelDir, "hf--BAAI--bge-m3"))).sort(), ["colbert_linear.pt", "sparse_linear.pt"], "no temporary files left");
  t.ok(progress.every((p) => p.totalBytes === sizes), "one total for both files from the first report");
  t.equal(progress.at(-1)!.downloadedBytes, sizes);
  t.equal(logged.at(-1), "100.0", "periodicProgress reports the end");
  t.same(hub.requests.sort(), ["GET /BAAI/bge-m3/resolve/main/colbert_linear.pt", "GET /BAAI/bge-m3/resolve/main/sparse_linear.pt"]);

  const again = await prepareHeads(DEFAULT_M3_HEADS, { modelDir, hub: access(hub.endpoint), expectedHiddenSize: WIDTH, onProgress: () => t.fail("no download") });
  t.ok(again.available);
  t.same(again.available && again.heads, state.heads);
  t.equal(hub.requests.length, 2, "a later start downloads nothing");
});

t.test("a gated repository: HF_TOKEN goes along as a bearer token; without it, 401 and no heads", async (t) => {
  const hub = await hubWith(t, "BAAI/bge-m3/resolve/main", "hf_gated");
  const refused = await prepareHeads(DEFAULT_M3_HEADS, { modelDir: path.join(dir, "models-gated-no-token"), hub: access(hub.endpoint) });
  t.match(!refused.available && refused.reason, /^could not download .*_linear\.pt: HTTP 401 Unauthorized$/);
  const state = await prepareHeads(DEFAULT_M3_HEADS, {
    modelDir: path.join(dir, "models-gated"),
    hub: access(hub.endpoint, "hf_gated"),
    expectedHiddenSize: WIDTH,
  });
  t.ok(state.available, JSON.stringify(state));
});

t.test("a folder inside a repository, and only the missing file is fetched", async (t) => {
  const hub = await hubWith(t, "owner/repo/resolve/main/heads/m3");
  const modelDir = path.join(dir, "models-folder");
  const cached = path.join(modelDir, "hf--owner--repo", "heads", "m3");
  await mkdir(cached, { recursive: true });
  await copyFile(files.sparse, path.join(cached, "sparse_linear.pt"));
  const state = await prepareHeads("hf:owner/repo/heads/m3/", { modelDir, hub: access(hub.endpoint) });
  t.ok(state.available, JSON.stringify(state));
  t.same(hub.requests, ["GET /owner/repo/resolve/main/heads/m3/colbert_linear.pt"]);
});

t.test("a repository without the files (404) leaves the heads unavailable, and nothing on disk", async (t) => {
  const hub = await hubWith(t, "BAAI/bge-m3/resolve/main");
  const modelDir = path.join(dir, "models-404");
  const state = await prepareHeads("hf:nobody/nothing", { modelDir, hub: access(hub.endpoint) });
  t.notOk(state.available);
  t.match(!state.available && state.reason, /^could not download http:\/\/127\.0\.0\.1:\d+\/nobody\/nothing\/resolve\/main\/(sparse|colbert)_linear\.pt: HTTP 404 Not Found$/);
  t.same(await readdir(path.join(modelDir, "hf--nobody--nothing")), [], "no temporary files left");
  t.equal(hub.requests.length, 2);
});

t.test("no server (connection refused), a server that never answers, a cut body: unavailable, quickly", async (t) => {
  const gone = await startFakeHub({});
  await gone.close(); // its port now refuses connections
  let started = Date.now();
  const refused = await prepareHeads(DEFAULT_M3_HEADS, { modelDir: path.join(dir, "models-refused"), hub: access(gone.endpoint) });
  t.notOk(refused.available);
  t.match(!refused.available && refused.reason, /could not download .*_linear\.pt: fetch failed \(ECONNREFUSED\)/);
  t.ok(Date.now() - started < 5000, `refused within 5 s (${Date.now() - started} ms)`);

  const silent = await rawServer(t, () => undefined); // accepts, never answers
  started = Date.now();
  const hung = await prepareHeads(DEFAULT_M3_HEADS, { modelDir: path.join(dir, "models-hung"), hub: access(silent), stallTimeoutMs: 300 });
  t.match(!hung.available && hung.reason, /could not download .*_linear\.pt: no data for 0\.3 s/);
  t.ok(Date.now() - started < 3000, `given up after the stall timeout (${Date.now() - started} ms)`);

  const cutting = await rawServer(t, (request, response) => {
    response.writeHead(200, { "content-length": "1000" });
    response.write(Buffer.alloc(10));
    setTimeout(() => response.destroy(), 20);
  });
  const cut = await prepareHeads(DEFAULT_M3_HEADS, { modelDir: path.join(dir, "models-cut"), hub: access(cutting) });
  t.match(!cut.available && cut.reason, /could not download .*_linear\.pt: /);
  t.same(await readdir(path.join(dir, "models-cut", "hf--BAAI--bge-m3")), [], "no partial files left");
});

t.test("a cancelled start gives up the download", async (t) => {
  const hub = await hubWith(t, "BAAI/bge-m3/resolve/main");
  const state = await prepareHeads(DEFAULT_M3_HEADS, { modelDir: path.join(dir, "models-cancel"), hub: access(hub.endpoint), signal: AbortSignal.abort() });
  t.same(state, { available: false, reason: "download cancelled" });
});

t.test("none, local directories, wrong widths and bad files", async (t) => {
  t.same(await prepareHeads("none", { modelDir: dir }), { available: false, reason: "M3_HEADS is none: the sparse and ColBERT heads are off" });
  const local = path.dirname(files.sparse);
  const state = await prepareHeads(local, { modelDir: dir, expectedHiddenSize: WIDTH });
  t.same(state.available && [state.source, state.heads.colbert.outputSize], [local, WIDTH]);
  const wide = await prepareHeads(local, { modelDir: dir, expectedHiddenSize: 1024 });
  t.same(wide, {
    available: false,
    reason: `${files.sparse}: weight has shape [1, ${WIDTH}], expected [1, 1024] (the model's hidden size)`,
  });
  const missing = await prepareHeads(path.join(dir, "nowhere"), { modelDir: dir });
  t.same(missing, { available: false, reason: `${path.join(dir, "nowhere")} is not a directory` });
  const half = path.join(dir, "half");
  await mkdir(half);
  await copyFile(files.colbert, path.join(half, "colbert_linear.pt"));
  t.same(await prepareHeads(half, { modelDir: dir }), { available: false, reason: `${path.join(half, "sparse_linear.pt")} not found` });
  const evil = path.join(dir, "evil");
  await mkdir(evil);
  await copyFile(files.colbert, path.join(evil, "colbert_linear.pt"));
  await copyFile(new URL("fixtures/heads/malicious-os-system.pt", import.meta.url), path.join(evil, "sparse_linear.pt"));
  const refused = await prepareHeads(evil, { modelDir: dir });
  t.match(!refused.available && refused.reason, /sparse_linear\.pt: refused: the pickle names the global os\.system/);
  await t.rejects(prepareHeads("hf:nope", { modelDir: dir }), /not a Hugging Face repository/, "only a malformed setting throws");
});

t.test("M3_HEADS is validated at start", async (t) => {
  t.equal(loadConfig({}, []).m3Heads, "hf:BAAI/bge-m3", "default: the authors' repository");
  const good = ["none", "NONE", "hf:BAAI/bge-m3/", "hf:owner/repo/a/b", "hf:my.org/repo_v2", " ./heads ", dir, "/abs/dir"];
  for (const value of good) t.equal(loadConfig({ M3_HEADS: value }, []).m3Heads, value.trim(), value);
  t.equal(loadConfig({}, ["--m3-heads", "none"]).m3Heads, "none");
  const bad: [string, RegExp][] = [
    ["hf:BAAI", /Invalid M3_HEADS: "hf:BAAI" is not a Hugging Face repository: expected hf:<owner>\/<repo>\[\/<folder>\]/],
    ["hf:/x", /not a Hugging Face repository/],
    ["hf:a--b/c", /not a Hugging Face repository/],
    ["hf:a b/c", /not a Hugging Face repository/],
    ["hf:a/b/../c", /names a folder with characters or parts \(\., \.\.\)/],
    ["hf:BAAI/bge-m3/sparse_linear.pt", /names a file; name the repository \(and folder\)/],
    ["https://huggingface.co/BAAI/bge-m3", /is a URL: expected/],
    ["BAAI/bge-m3", /"BAAI\/bge-m3" is no local folder; for the Hugging Face repository write hf:BAAI\/bge-m3/],
  ];
  for (const [value, message] of bad) t.throws(() => loadConfig({ M3_HEADS: value }, []), message, value);
  t.throws(() => loadConfig({}, ["--m3-heads", "hf:x"]), new ConfigError('Invalid --m3-heads: "hf:x" is not a Hugging Face repository: expected hf:<owner>/<repo>[/<folder>], a local directory holding sparse_linear.pt and colbert_linear.pt, or none'));
  t.throws(() => loadConfig({}, ["--m3-heads", " "]), /Invalid --m3-heads/, "blank");
});
