import { copyFile, mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import t, { type Test } from "tap";
import { ConfigError, loadConfig } from "../src/config/load.js";
import { DEFAULT_M3_HEADS } from "../src/config/schema.js";
import { prepareHeads } from "../src/model/heads/prepare.js";
import { DEFAULT_DOWNLOAD_SETTINGS, type DownloadEvent } from "../src/model/download/download.js";
import { downloadLines } from "../src/model/progress.js";
import type { HubAccess } from "../src/model/resolve.js";
import { writeRandomHeads } from "../scripts/heads/random-heads.js";
import { startFakeHub, type FakeHub } from "./support/hf-server.js";
import { startProxy } from "./support/proxy.js";

const WIDTH = 16;
const dir = await mkdtemp(path.join(tmpdir(), "bge-m3-heads-download-"));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const files = await writeRandomHeads(path.join(dir, "source"), { width: WIDTH, dtype: "f16" });
const sizes = { sparse_linear: (await stat(files.sparse)).size, colbert_linear: (await stat(files.colbert)).size };

/** HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE as the config passes them. */
const access = (endpoint: string, token = "", offline = false): HubAccess => ({ endpoint, token, offline });

/** Short deadlines: a failing download gives up within about a second. */
const impatient = (timeoutMs: number, stallTimeoutMs = 5000) => ({ ...DEFAULT_DOWNLOAD_SETTINGS, timeoutMs, stallTimeoutMs });

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
  const events: DownloadEvent[] = [];
  const lines: string[] = [];
  const toLines = downloadLines((_event, line) => lines.push(line));
  const state = await prepareHeads(DEFAULT_M3_HEADS, {
    modelDir,
    hub: access(hub.endpoint),
    expectedHiddenSize: WIDTH,
    onEvent: (event) => {
      events.push(event);
      toLines(event);
    },
  });
  t.ok(state.available, JSON.stringify(state));
  if (!state.available) return;
  t.equal(state.heads.hiddenSize, WIDTH);
  const folder = path.resolve(modelDir, "hf--BAAI--bge-m3");
  t.equal(state.source, `hf:BAAI/bge-m3 (${folder})`);
  t.same((await readdir(folder)).sort(), ["colbert_linear.pt", "sparse_linear.pt"], "no temporary files left");
  for (const name of ["sparse_linear", "colbert_linear"] as const) {
    const progress = events.filter((event) => event.type === "progress" && event.label === `heads file ${name}.pt`);
    t.ok(progress.length > 0 && progress.every((event) => event.type === "progress" && event.totalBytes === sizes[name]), `${name}: the total from the first report`);
    t.ok(lines.includes(`downloading the heads file ${name}.pt from ${hub.endpoint}BAAI/bge-m3/resolve/main/${name}.pt to ${path.join(folder, `${name}.pt`)}`), `${name}: where from, where to`);
    t.ok(lines.some((line) => line.startsWith(`downloading heads file ${name}.pt: 100.0% `)), `${name}: the end is reported`);
  }
  t.same(hub.requests.sort(), ["GET /BAAI/bge-m3/resolve/main/colbert_linear.pt", "GET /BAAI/bge-m3/resolve/main/sparse_linear.pt"]);

  const again = await prepareHeads(DEFAULT_M3_HEADS, { modelDir, hub: access(hub.endpoint), expectedHiddenSize: WIDTH, onEvent: () => t.fail("no download") });
  t.ok(again.available);
  t.same(again.available && again.heads, state.heads);
  t.equal(hub.requests.length, 2, "a later start downloads nothing");
  const offline = await prepareHeads(DEFAULT_M3_HEADS, { modelDir, hub: access("http://hub.invalid", "", true), expectedHiddenSize: WIDTH });
  t.ok(offline.available, "HF_HUB_OFFLINE: the files MODEL_DIR holds");
});

t.test("HF_HUB_OFFLINE with a file missing: unavailable, naming the file, no request", async (t) => {
  const hub = await hubWith(t, "BAAI/bge-m3/resolve/main");
  const modelDir = path.join(dir, "models-offline");
  const folder = path.resolve(modelDir, "hf--BAAI--bge-m3");
  await mkdir(folder, { recursive: true });
  await copyFile(files.sparse, path.join(folder, "sparse_linear.pt"));
  const state = await prepareHeads(DEFAULT_M3_HEADS, { modelDir, hub: access(hub.endpoint, "", true) });
  t.same(state, {
    available: false,
    reason: `HF_HUB_OFFLINE is set and ${path.join(folder, "colbert_linear.pt")} is not there (it comes from ${hub.endpoint}BAAI/bge-m3/resolve/main/colbert_linear.pt): copy it there, or set M3_HEADS to a folder holding both files, or none`,
  });
  t.same(hub.requests, []);
});

t.test("HTTP_PROXY: an http endpoint is fetched through the proxy in absolute form", async (t) => {
  const hub = await hubWith(t, "BAAI/bge-m3/resolve/main");
  const proxy = await startProxy((host, port) => (host === "hub.invalid" ? { host: "127.0.0.1", port: hub.port } : { host, port }));
  t.teardown(() => proxy.close());
  const state = await prepareHeads(DEFAULT_M3_HEADS, {
    modelDir: path.join(dir, "models-proxy"),
    hub: access("http://hub.invalid"),
    expectedHiddenSize: WIDTH,
    download: { ...DEFAULT_DOWNLOAD_SETTINGS, proxies: { httpsProxy: "", httpProxy: proxy.url, noProxy: "" } },
  });
  t.ok(state.available, JSON.stringify(state));
  t.same(proxy.seen, ["GET http://hub.invalid/BAAI/bge-m3/resolve/main/sparse_linear.pt", "GET http://hub.invalid/BAAI/bge-m3/resolve/main/colbert_linear.pt"]);
});

t.test("a gated repository: HF_TOKEN goes along as a bearer token; without it, 401 and no heads", async (t) => {
  const hub = await hubWith(t, "BAAI/bge-m3/resolve/main", "hf_gated");
  const refused = await prepareHeads(DEFAULT_M3_HEADS, { modelDir: path.join(dir, "models-gated-no-token"), hub: access(hub.endpoint) });
  t.match(!refused.available && refused.reason, /^could not download the heads file sparse_linear\.pt from .*: .* answered HTTP 401 Unauthorized \(Access to this repository is restricted\.\); the repository is gated, private or does not exist: set HF_TOKEN/);
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
  t.match(
    !state.available && state.reason,
    /^could not download the heads file sparse_linear\.pt from http:\/\/127\.0\.0\.1:\d+\/nobody\/nothing\/resolve\/main\/sparse_linear\.pt: .* answered HTTP 404 Not Found; the file is not there: check M3_HEADS \(repository and file name\) and HF_ENDPOINT; or, without access to the hub: copy sparse_linear\.pt and colbert_linear\.pt into .*, or set M3_HEADS to a folder holding them \(none: dense vectors only\)$/,
  );
  t.same(await readdir(path.join(modelDir, "hf--nobody--nothing")), [], "no temporary files left");
  t.equal(hub.requests.length, 1, "a 404 is not retried");
});

t.test("no server (connection refused), a server that never answers, a cut body: retried, then unavailable by the deadline", async (t) => {
  const gone = await startFakeHub({});
  await gone.close(); // its port now refuses connections
  let started = Date.now();
  const refused = await prepareHeads(DEFAULT_M3_HEADS, { modelDir: path.join(dir, "models-refused"), hub: access(gone.endpoint), download: impatient(1500) });
  t.notOk(refused.available);
  t.match(!refused.available && refused.reason, /^gave up downloading the heads file sparse_linear\.pt from .* after 2 attempts and [\d.]+ s without data \(DOWNLOAD_TIMEOUT_MS=1500\): 127\.0\.0\.1:\d+ refused the connection \(ECONNREFUSED\)/);
  t.ok(Date.now() - started < 5000, `refused within 5 s (${Date.now() - started} ms)`);

  const silent = await rawServer(t, () => undefined); // accepts, never answers
  started = Date.now();
  const hung = await prepareHeads(DEFAULT_M3_HEADS, { modelDir: path.join(dir, "models-hung"), hub: access(silent), download: impatient(300, 300) });
  t.match(!hung.available && hung.reason, /^gave up downloading the heads file sparse_linear\.pt from .* after 1 attempt and [\d.]+ s without data \(DOWNLOAD_TIMEOUT_MS=300\): no data from 127\.0\.0\.1:\d+ for 0\.3 s; the link is slow or broken/);
  t.ok(Date.now() - started < 3000, `given up after the deadline (${Date.now() - started} ms)`);

  const cutting = await rawServer(t, (request, response) => {
    response.writeHead(200, { "content-length": "1000" });
    response.write(Buffer.alloc(10));
    setTimeout(() => response.destroy(), 20);
  });
  const cut = await prepareHeads(DEFAULT_M3_HEADS, { modelDir: path.join(dir, "models-cut"), hub: access(cutting), download: impatient(1500) });
  t.match(!cut.available && cut.reason, /^gave up downloading the heads file sparse_linear\.pt from /);
  t.same((await readdir(path.join(dir, "models-cut", "hf--BAAI--bge-m3"))).filter((name) => name.endsWith(".pt")), [], "no file that could be taken for a head");
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
