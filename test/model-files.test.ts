import { copyFile, mkdtemp, open, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import t from "tap";
import { launchTestServer } from "../scripts/bench/server-process.js";
import { checkModelReference } from "../src/model/reference.js";
import { resolveModel } from "../src/model/resolve.js";
import { validateModelFile } from "../src/model/validate.js";
import { ensureVocabFile } from "../scripts/gguf/vocab.js";
import { TINY, testModel } from "./helpers/models.js";
import { startFakeHub } from "./support/hf-server.js";

const modelPath = await testModel(TINY);
const dir = await mkdtemp(path.join(tmpdir(), "bge-m3-model-files-"));

/** Runs the real server process (LOG_LEVEL=error: stderr holds nothing but a start-up error); its exit code and stderr. */
async function runServer(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const server = launchTestServer({ LOG_LEVEL: "error", ...env });
  const { code } = await server.exited;
  return { code, stderr: server.errors() };
}

t.test("a valid model passes the check with its facts", async (t) => {
  const facts = await validateModelFile(modelPath);
  t.equal(facts.architecture, "bert");
  t.equal(facts.poolingType, 2);
  t.equal(facts.contextLength, TINY.contextLength ?? 8192);
  t.ok(facts.embeddingLength > 0);
});

t.test("broken model files stop start-up with one line and exit code 1", async (t) => {
  const notGguf = path.join(dir, "not-a-model.gguf");
  await writeFile(notGguf, "this is not a gguf file at all".repeat(10));
  const truncated = path.join(dir, "truncated.gguf");
  await copyFile(modelPath, truncated);
  const handle = await open(truncated, "r+");
  await handle.truncate((await handle.stat()).size - 4096);
  await handle.close();
  // A valid GGUF of another architecture (llama.cpp's nomic-bert-moe vocabulary file).
  const wrongArchitecture = ensureVocabFile();
  const cases: [string, RegExp][] = [
    [path.join(dir, "missing.gguf"), /model file not found/],
    [notGguf, /not a readable GGUF file/],
    [truncated, /is truncated/],
    [wrongArchitecture, /expected architecture "bert"/],
  ];
  // side by side: each is a whole server start-up that fails
  const results = await Promise.all(cases.map(([file]) => runServer({ EMBEDDING_MODEL: file })));
  for (const [i, [file, pattern]] of cases.entries()) {
    const { code, stderr } = results[i];
    t.equal(code, 1, file);
    t.match(stderr, pattern, file);
    t.equal(stderr.trim().split("\n").length, 1, `one line: ${stderr}`);
  }
});

t.test("DEVICE=cuda without a GPU is a one-line error", async (t) => {
  const { code, stderr } = await runServer({ EMBEDDING_MODEL: modelPath, DEVICE: "cuda" });
  t.equal(code, 1);
  t.match(stderr, /cuda/i);
  t.equal(stderr.trim().split("\n").length, 1, stderr);
});

t.test("a port in use is a one-line error", async (t) => {
  const { createServer } = await import("node:net");
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
  t.teardown(() => blocker.close());
  const port = String((blocker.address() as { port: number }).port);
  const { code, stderr } = await runServer({ EMBEDDING_MODEL: modelPath, PORT: port });
  t.equal(code, 1);
  t.match(stderr, /cannot listen: .*EADDRINUSE/);
});

t.test("hf: models download once from HF_ENDPOINT into MODEL_DIR", async (t) => {
  const hub = await startFakeHub({ "/gpustack/bge-m3-GGUF/resolve/main/bge-m3-Q8_0.gguf": modelPath });
  t.teardown(() => hub.close());
  const access = { endpoint: hub.endpoint, token: "", offline: false };
  const modelDir = path.join(dir, "downloads");
  const progress: number[] = [];
  const first = await resolveModel(checkModelReference("BAAI/bge-m3"), {
    modelDir,
    hub: access,
    onEvent: (event) => event.type === "progress" && progress.push(event.downloadedBytes),
  });
  t.equal(first, path.resolve(modelDir, "hf_gpustack_bge-m3-Q8_0.gguf"), "node-llama-cpp's name for it, as earlier versions stored it");
  t.ok(progress.length > 0 && progress.at(-1)! > 0, "progress was reported");
  t.ok(hub.requests.some((r) => r.startsWith("GET /gpustack/bge-m3-GGUF/resolve/main/bge-m3-Q8_0.gguf")));
  const facts = await validateModelFile(first);
  t.equal(facts.architecture, "bert", "the downloaded file is the model");
  const seen = hub.requests.length;
  const again = await resolveModel("hf:gpustack/bge-m3-GGUF/bge-m3-Q8_0.gguf", { modelDir, hub: access });
  t.equal(again, first);
  t.equal(hub.requests.length, seen, "a later start downloads nothing");
  await t.rejects(resolveModel("hf:nobody/nothing/missing.gguf", { modelDir, hub: access }), /could not download/);
});

t.test("a gated hf: model downloads with HF_TOKEN, and not without it", async (t) => {
  const hub = await startFakeHub({ "/owner/gated/resolve/main/model.gguf": modelPath }, { token: "hf_gated" });
  t.teardown(() => hub.close());
  const modelDir = path.join(dir, "gated-downloads");
  await t.rejects(
    resolveModel("hf:owner/gated/model.gguf", { modelDir, hub: { endpoint: hub.endpoint, token: "", offline: false } }),
    /could not download/,
  );
  const file = await resolveModel("hf:owner/gated/model.gguf", { modelDir, hub: { endpoint: hub.endpoint, token: "hf_gated", offline: false } });
  t.equal((await validateModelFile(file)).architecture, "bert");
});

t.test("the server downloads the model on first start, then serves it", async (t) => {
  const hub = await startFakeHub({ "/owner/repo/resolve/main/model.gguf": modelPath });
  t.teardown(() => hub.close());
  const modelDir = path.join(dir, "server-downloads");
  const server = launchTestServer({ HF_ENDPOINT: hub.endpoint, MODEL_DIR: modelDir, EMBEDDING_MODEL: "hf:owner/repo/model.gguf" });
  t.teardown(() => server.stop("SIGKILL"));
  await server.waitFor(/ready: POST/);
  t.match(server.output(), /downloading model: 100\.0%/, "non-terminal progress is logged");
  const response = await fetch(`${await server.address()}/v1/embeddings`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ input: "downloaded" }),
  });
  t.equal(response.status, 200);
});
