// The first start where the hub is out of reach, slow or behind a proxy, through the real server
// process against loopback stand-ins: what the user reads, the exit code, what is left on disk.
// A start that gets its file stops once the file is checked ("model file checked"): loading it and
// serving from it is model-files.test.ts's, and a model load costs seconds per process on 2 cores.
import { mkdir, mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import t, { type Test } from "tap";
import { launchTestServer, type LaunchedServer } from "../scripts/bench/server-process.js";
import { writeRandomHeads } from "../scripts/heads/random-heads.js";
import { TINY, testModel } from "./helpers/models.js";
import { startFakeHub, TEST_CA_FILE, type FakeHub, type FakeHubOptions } from "./support/hf-server.js";
import { startProxy } from "./support/proxy.js";

const modelPath = await testModel(TINY);
const modelBytes = await readFile(modelPath);
const dir = await mkdtemp(path.join(tmpdir(), "bge-m3-model-download-"));
t.teardown(() => rm(dir, { recursive: true, force: true }));

const HUB_PATH = "/owner/repo/resolve/main/model.gguf";
const MODEL = "hf:owner/repo/model.gguf";
/** node-llama-cpp's name for MODEL, which a MODEL_DIR filled by earlier versions holds. */
const LOCAL_NAME = "hf_owner_repo_model.gguf";

async function hubWith(t: Test, options: FakeHubOptions = {}): Promise<FakeHub> {
  const hub = await startFakeHub({ [HUB_PATH]: modelPath }, options);
  t.teardown(() => hub.close());
  return hub;
}

function server(t: Test, env: Record<string, string>): LaunchedServer {
  const run = launchTestServer({ EMBEDDING_MODEL: MODEL, ...env });
  t.teardown(() => run.stop());
  return run;
}

/** pino's messages, in order. */
const messages = (run: LaunchedServer): string[] =>
  run
    .output()
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line).msg as string);

async function modelDir(name: string): Promise<string> {
  const folder = path.join(dir, name);
  await mkdir(folder, { recursive: true });
  return folder;
}

t.test("a host that does not resolve, refuses, answers 404 or 401: the reason and what to do, exit 1, nothing kept", async (t) => {
  const gone = await startFakeHub({});
  await gone.close(); // its port now refuses connections
  const missing = await startFakeHub({});
  t.teardown(() => missing.close());
  const gated = await hubWith(t, { token: "hf_gated" });
  const cases = {
    unresolvable: { HF_ENDPOINT: "http://hub.invalid" },
    refused: { HF_ENDPOINT: gone.endpoint, DOWNLOAD_TIMEOUT_MS: "2500" },
    notFound: { HF_ENDPOINT: missing.endpoint },
    unauthorized: { HF_ENDPOINT: gated.endpoint },
  };
  const dirs = Object.fromEntries(await Promise.all(Object.keys(cases).map(async (name) => [name, await modelDir(`fail-${name}`)])));
  // side by side: each is a whole server start that fails
  const runs = Object.fromEntries(Object.entries(cases).map(([name, env]) => [name, server(t, { ...env, MODEL_DIR: dirs[name] })]));
  const codes = Object.fromEntries(await Promise.all(Object.entries(runs).map(async ([name, run]) => [name, (await run.exited).code])));

  for (const [name, run] of Object.entries(runs)) {
    t.equal(codes[name], 1, `${name}: exit code 1`);
    t.equal(run.errors().trim().split("\n").length, 1, `${name}: one error line: ${run.errors()}`);
    const endpoint = cases[name as keyof typeof cases].HF_ENDPOINT.replace(/\/$/, "");
    t.equal(messages(run)[1], `downloading the model from ${endpoint}${HUB_PATH} to ${path.join(dirs[name], LOCAL_NAME)}`, `${name}: says what comes from where to where`);
    t.same((await readdir(dirs[name])).filter((file) => file.endsWith(".gguf")), [], `${name}: no model file`);
    t.notMatch(run.output(), /model file checked/, `${name}: nothing loaded`);
  }
  const offlineAdvice = /or, without access to the hub: run npm run fetch-model where it is reachable and copy the file to .*hf_owner_repo_model\.gguf, or set EMBEDDING_MODEL=\/path\/to\.gguf$/;
  t.match(runs.unresolvable.errors(), /^error: could not download the model from http:\/\/hub\.invalid\/owner\/repo\/resolve\/main\/model\.gguf: cannot resolve hub\.invalid \(ENOTFOUND\); check the host name \(HF_ENDPOINT, or the URL\) and this machine's DNS; if the way out is a proxy, set HTTPS_PROXY; /);
  t.match(runs.unresolvable.errors().trim(), offlineAdvice);
  t.notMatch(runs.unresolvable.output(), /attempt 1 failed/, "a name that does not exist is not retried");

  const retries = messages(runs.refused).filter((line) => line.includes("download attempt"));
  t.ok(retries.length >= 1, `a line per failed attempt: ${retries.join("\n")}`);
  t.match(retries[0], /^model download attempt 1 failed: 127\.0\.0\.1:\d+ refused the connection \(ECONNREFUSED\); trying again in 1\.0 s, giving up after 2\.5 s without data \(DOWNLOAD_TIMEOUT_MS\)\. If this persists: check the network and HF_ENDPOINT; if the way out is a proxy, set HTTPS_PROXY; or, without access to the hub/);
  t.match(runs.refused.errors(), /^error: gave up downloading the model from http:\/\/127\.0\.0\.1:\d+\/owner\/repo\/resolve\/main\/model\.gguf after \d+ attempts and [\d.]+ s without data \(DOWNLOAD_TIMEOUT_MS=2500\): 127\.0\.0\.1:\d+ refused the connection \(ECONNREFUSED\); check the network/);

  t.match(runs.notFound.errors(), /^error: could not download the model from .*: http:\/\/127\.0\.0\.1:\d+\/owner\/repo\/resolve\/main\/model\.gguf answered HTTP 404 Not Found; the file is not there: check EMBEDDING_MODEL \(repository and file name\) and HF_ENDPOINT; or, without access to the hub/);
  t.equal(missing.requests.length, 1, "404 is not retried");
  t.match(runs.unauthorized.errors(), /answered HTTP 401 Unauthorized \(Access to this repository is restricted\.\); the repository is gated, private or does not exist: set HF_TOKEN to a token that can read it/);
  t.equal(gated.requests.length, 1, "401 is not retried");
});

t.test("a transfer that stalls halfway: /health says how far, retried from there, given up; the next start resumes it", async (t) => {
  const hub = await hubWith(t);
  const half = Math.floor(modelBytes.length / 2);
  hub.stallAfterBytes = half;
  const folder = await modelDir("stall");
  const env = { HF_ENDPOINT: hub.endpoint, MODEL_DIR: folder, DOWNLOAD_STALL_TIMEOUT_MS: "1500", DOWNLOAD_TIMEOUT_MS: "4000" };
  const stalled = server(t, env);
  const url = await stalled.address();
  await stalled.waitFor(/downloading the model from/);
  // /health while the first half arrives and the link then stalls (4 s or more): poll until it shows the half
  const stallPercent = Number(((100 * half) / modelBytes.length).toFixed(1));
  let health: { status?: string; step?: string; percent?: number } = {};
  const statuses = new Set<number>();
  for (const deadline = Date.now() + 30_000; Date.now() < deadline && !((health.percent ?? 0) >= stallPercent); ) {
    const response = await fetch(`${url}/health`).catch(() => undefined);
    if (response) {
      statuses.add(response.status);
      health = await response.json();
    }
    if (!((health.percent ?? 0) >= stallPercent)) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.same([...statuses], [503], "not ready while downloading");
  t.match(health, { status: "loading", step: "downloading the model", percent: stallPercent }, "/health: downloading, and how far");
  t.equal((await stalled.exited).code, 1, "exit code 1 once DOWNLOAD_TIMEOUT_MS passes without data");
  t.match(messages(stalled).join("\n"), /model download attempt 1 failed at 50\.0%: no data from 127\.0\.0\.1:\d+ for 1\.5 s; trying again in 1\.0 s/);
  t.match(stalled.errors(), /^error: gave up downloading the model from .* after 2 attempts and [\d.]+ s without data \(DOWNLOAD_TIMEOUT_MS=4000\): no data from 127\.0\.0\.1:\d+ for [\d.]+ s; the link is slow or broken \(DOWNLOAD_STALL_TIMEOUT_MS is the longest pause allowed\); or, without access to the hub/);
  t.equal(hub.headers[1]?.range, `bytes=${half}-`, "the second attempt asked for the rest");
  t.notMatch(stalled.output(), /model file checked/, "nothing loaded from the partial file");
  t.same((await readdir(folder)).sort(), [`${LOCAL_NAME}.partial`, `${LOCAL_NAME}.partial.json`], "only the partial download is kept");
  t.equal((await stat(path.join(folder, `${LOCAL_NAME}.partial`))).size, half);

  hub.stallAfterBytes = undefined;
  const seen = hub.requests.length;
  const resumed = server(t, env);
  await resumed.waitFor(/model file checked/);
  const lines = messages(resumed);
  t.match(lines[1], /^downloading the model from .* \(resuming after the [\d.]+ MB already there\)$/);
  t.match(lines[2], /^downloading model: \d+\.\d% \([\d.]+ MB of [\d.]+ MB\)$/);
  t.ok(lines.includes(`downloading model: 100.0% (${(modelBytes.length / 1e6).toFixed(1)} MB of ${(modelBytes.length / 1e6).toFixed(1)} MB)`), "the end is reported");
  t.match(lines.find((line) => line.startsWith("downloaded")), `downloaded the model: ${path.join(folder, LOCAL_NAME)} (${(modelBytes.length / 1e6).toFixed(1)} MB in `);
  t.same(hub.headers.slice(seen).map((headers) => headers.range), [`bytes=${half}-`], "one request, for the rest");
  t.ok((await readFile(path.join(folder, LOCAL_NAME))).equals(modelBytes), "the resumed file has the right bytes");
  t.same(await readdir(folder), [LOCAL_NAME], "the partial file became the model");
  t.equal((await resumed.stop()).code, 0);
});

t.test("no network: npm run fetch-model where the hub is reachable, then HF_HUB_OFFLINE=1 uses that MODEL_DIR; a missing file named exactly", async (t) => {
  const heads = await writeRandomHeads(path.join(dir, "heads-source"), { width: TINY.width as number, dtype: "f16" });
  const hub = await startFakeHub({
    [HUB_PATH]: modelPath,
    "/BAAI/bge-m3/resolve/main/sparse_linear.pt": heads.sparse,
    "/BAAI/bge-m3/resolve/main/colbert_linear.pt": heads.colbert,
  });
  t.teardown(() => hub.close());
  const fetched = await modelDir("offline-fetched");
  const fetch = launchTestServer({ EMBEDDING_MODEL: MODEL, HF_ENDPOINT: hub.endpoint, MODEL_DIR: fetched, M3_HEADS: "hf:BAAI/bge-m3" }, ["--import", "tsx", "scripts/fetch-model.ts"]);
  t.equal((await fetch.exited).code, 0, fetch.output());
  t.match(fetch.output(), `${path.join(fetched, LOCAL_NAME)}: 2 layers, ${TINY.width} dimensions, context 8192`);
  t.match(fetch.output(), `sparse and ColBERT heads: hf:BAAI/bge-m3 (${path.join(fetched, "hf--BAAI--bge-m3")})`, "the heads come along");
  const fetchRequests = hub.requests.length;

  const empty = await modelDir("offline-empty");
  const base = { HF_HUB_OFFLINE: "1", HF_ENDPOINT: hub.endpoint };
  const served = server(t, { ...base, MODEL_DIR: fetched });
  const refused = server(t, { ...base, MODEL_DIR: empty });
  t.equal((await refused.exited).code, 1);
  t.equal(
    refused.errors().trim(),
    `error: HF_HUB_OFFLINE is set and the model file ${path.join(empty, LOCAL_NAME)} is not there (it comes from ${hub.endpoint.replace(/\/$/, "")}${HUB_PATH}): ` +
      "copy it there (npm run fetch-model with the same EMBEDDING_MODEL where the hub is reachable, then copy MODEL_DIR's file), or set EMBEDDING_MODEL=/path/to.gguf",
  );
  await served.waitFor(/model file checked/);
  t.equal((await served.stop()).code, 0);
  t.equal(hub.requests.length, fetchRequests, "no request reached the hub");
});

t.test("HTTPS_PROXY: the download goes through a CONNECT proxy to an https host only the proxy can reach", async (t) => {
  const hub = await hubWith(t, { tls: true });
  const proxy = await startProxy((host, port) => (host === "hub.invalid" ? { host: "127.0.0.1", port: hub.port } : { host, port }));
  t.teardown(() => proxy.close());
  const folder = await modelDir("proxy");
  const run = server(t, {
    HF_ENDPOINT: "https://hub.invalid",
    HTTPS_PROXY: proxy.url,
    NO_PROXY: "localhost,127.0.0.1",
    // the stand-in's self-signed certificate, as a TLS-inspecting proxy's CA is trusted
    NODE_EXTRA_CA_CERTS: TEST_CA_FILE,
    MODEL_DIR: folder,
  });
  await run.waitFor(/model file checked/);
  t.equal(messages(run)[1], `downloading the model from https://hub.invalid${HUB_PATH} through the proxy ${proxy.url} to ${path.join(folder, LOCAL_NAME)}`);
  t.same(proxy.seen, ["CONNECT hub.invalid:443"], "one tunnel, to the hub's name");
  t.same(hub.requests, [`GET ${HUB_PATH}`]);
  t.ok((await readFile(path.join(folder, LOCAL_NAME))).equals(modelBytes));
  t.equal((await run.stop()).code, 0);
});
