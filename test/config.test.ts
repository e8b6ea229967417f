import path from "node:path";
import t from "tap";
import { launchTestServer, TSX_ENTRY } from "../scripts/bench/server-process.js";
import { ConfigError, loadConfig } from "../src/config/load.js";
import { DEFAULT_MODEL_URI } from "../src/config/schema.js";
import { DEFAULT_DOWNLOAD_SETTINGS } from "../src/model/download/download.js";

t.test("defaults", async (t) => {
  const config = loadConfig({}, []);
  t.equal(config.port, 8000);
  t.equal(config.host, "0.0.0.0");
  t.equal(config.routePrefix, "");
  t.same(config.apiKeys, []);
  t.equal(config.device, "auto");
  t.equal(config.embeddingModel, DEFAULT_MODEL_URI);
  t.equal(DEFAULT_MODEL_URI, "hf:gpustack/bge-m3-GGUF/bge-m3-Q8_0.gguf", "Q8_0: vectors close to the fp32 model's");
  t.equal(config.docsPublic, false);
  t.equal(config.modelDir, "models");
  t.equal(config.contextSize, 8192);
  t.equal(config.truncate, false);
  t.equal(config.maxInputs, 2048);
  t.equal(config.servedModelName, "bge-m3");
  t.equal(config.corsOrigins, true);
  t.same(config.hub, { endpoint: "", token: "", offline: false }, "huggingface.co, no token, network allowed");
  t.same(config.download, DEFAULT_DOWNLOAD_SETTINGS, "5 minutes without data ends a download, 30 s without data an attempt; no proxy");
  t.same(DEFAULT_DOWNLOAD_SETTINGS, { timeoutMs: 300_000, stallTimeoutMs: 30_000, proxies: { httpsProxy: "", httpProxy: "", noProxy: "" } });
  t.equal(config.attentionPrecision, "auto", "int16 or bf16 attention products for quantised weights where the build has them");
  t.equal(config.shutdownTimeoutMs, 30_000);
});

t.test("environment variables use the seed's names", async (t) => {
  const config = loadConfig(
    {
      ROUTE_PREFIX: "/api/",
      API_KEY: "k1, k2,,",
      DEVICE: "cpu",
      EMBEDDING_MODEL: "/models/x.gguf",
      PORT: "9000",
      TRUNCATE: "true",
      CORS_ORIGINS: "https://a.example,https://b.example",
      MAX_INPUTS: "10",
      HF_ENDPOINT: "https://hf-mirror.example/",
      HF_TOKEN: " hf_abc ",
      ATTENTION_PRECISION: "int16",
      SHUTDOWN_TIMEOUT_MS: "0",
    },
    [],
  );
  t.equal(config.routePrefix, "/api");
  t.same(config.apiKeys, ["k1", "k2"]);
  t.equal(config.device, "cpu");
  t.equal(config.embeddingModel, "/models/x.gguf");
  t.equal(config.port, 9000);
  t.equal(config.truncate, true);
  t.same(config.corsOrigins, ["https://a.example", "https://b.example"]);
  t.equal(config.maxInputs, 10);
  t.same(config.hub, { endpoint: "https://hf-mirror.example/", token: "hf_abc", offline: false });
  t.equal(config.attentionPrecision, "int16");
  t.equal(config.shutdownTimeoutMs, 0, "0 = no deadline of ours");
});

t.test("downloads: the deadline, the stall timeout, HF_HUB_OFFLINE and the proxy variables", async (t) => {
  const config = loadConfig({ DOWNLOAD_TIMEOUT_MS: "0", DOWNLOAD_STALL_TIMEOUT_MS: "2500", HF_HUB_OFFLINE: "1", https_proxy: "http://p:3128", NO_PROXY: "x" }, []);
  t.same(config.download, { timeoutMs: 0, stallTimeoutMs: 2500, proxies: { httpsProxy: "http://p:3128", httpProxy: "", noProxy: "x" } });
  t.equal(config.hub.offline, true);
  t.throws(() => loadConfig({ DOWNLOAD_TIMEOUT_MS: "-1" }, []), /Invalid DOWNLOAD_TIMEOUT_MS: expected an integer in \[0, inf\]/);
  t.throws(() => loadConfig({ DOWNLOAD_STALL_TIMEOUT_MS: "50" }, []), /Invalid DOWNLOAD_STALL_TIMEOUT_MS: expected an integer in \[100, inf\]/);
  t.throws(() => loadConfig({ HF_HUB_OFFLINE: "maybe" }, []), /Invalid HF_HUB_OFFLINE: expected true or false/);
});

t.test("CLI flags override the environment", async (t) => {
  const config = loadConfig({ PORT: "9000" }, ["--port", "9100", "--model", "m.gguf", "--route-prefix=/v"]);
  t.equal(config.port, 9100);
  t.equal(config.embeddingModel, "m.gguf");
  t.equal(config.routePrefix, "/v");
});

t.test("bad values name the variable", async (t) => {
  const cases: [Record<string, string>, string[], RegExp][] = [
    [{ PORT: "abc" }, [], /Invalid PORT: expected an integer in \[0, 65535\], got "abc"/],
    [{ PORT: "70000" }, [], /Invalid PORT/],
    [{ DEVICE: "tpu" }, [], /Invalid DEVICE: expected one of cpu, cuda, auto, got "tpu"/],
    [{ TRUNCATE: "maybe" }, [], /Invalid TRUNCATE: expected true or false/],
    [{ CONTEXT_SIZE: "100000" }, [], /Invalid CONTEXT_SIZE/],
    [{ ROUTE_PREFIX: "api" }, [], /Invalid ROUTE_PREFIX/],
    [{ LOG_LEVEL: "loud" }, [], /Invalid LOG_LEVEL/],
    [{ HF_ENDPOINT: "hf-mirror.example" }, [], /Invalid HF_ENDPOINT: expected a value matching/],
    [{ ATTENTION_PRECISION: "int8" }, [], /Invalid ATTENTION_PRECISION: expected one of auto, f32, int16, bf16, got "int8"/],
    [{}, ["--threads", "x"], /Invalid --threads/],
    [{}, ["--no-such-flag", "1"], /Unknown option '--no-such-flag'/],
  ];
  for (const [env, argv, pattern] of cases) {
    t.throws(() => loadConfig(env, argv), pattern, JSON.stringify([env, argv]));
    t.throws(() => loadConfig(env, argv), ConfigError);
  }
});

t.test("EMBEDDING_MODEL: the seed project's names mean the default; GGUF references pass as they are", async (t) => {
  for (const name of ["BAAI/bge-m3", " baai/BGE-M3 ", "bge-m3"]) {
    t.equal(loadConfig({ EMBEDDING_MODEL: name }, []).embeddingModel, DEFAULT_MODEL_URI, name);
  }
  for (const reference of ["hf:owner/repo/model.gguf", "https://example.com/m.gguf", "models/missing.gguf", "/no/such/file.gguf"]) {
    t.equal(loadConfig({ EMBEDDING_MODEL: reference }, []).embeddingModel, reference, reference);
  }
});

t.test("EMBEDDING_MODEL: another Hugging Face id is one line saying how to name a GGUF file", async (t) => {
  const expected =
    /^Invalid EMBEDDING_MODEL: "BAAI\/bge-m3-unsupervised" is a Hugging Face model id \(and no local file\), and this server runs GGUF files: name a local \.gguf path, hf:<owner>\/<repo>\/<file>\.gguf or an https URL of a \.gguf file; BAAI\/bge-m3 \(or no value\) means the default, hf:/;
  t.throws(() => loadConfig({ EMBEDDING_MODEL: "BAAI/bge-m3-unsupervised" }, []), expected);
  t.throws(() => loadConfig({ EMBEDDING_MODEL: "BAAI/bge-m3-unsupervised" }, []), ConfigError);
  t.throws(() => loadConfig({}, ["--model", "intfloat/e5-large"]), /^Invalid --embedding-model: "intfloat\/e5-large" is a Hugging Face model id/);
});

t.test("EMBEDDING_MODEL: a folder is one line; a Hugging Face checkpoint gets the converter command", async (t) => {
  const root = t.testdir({
    "st-model": { "config.json": "{}", "model.safetensors": "", "modules.json": "[]" },
    "torch model": { "config.json": "{}", "pytorch_model.bin": "" },
    "gguf-folder": { "bge-m3-Q8_0.gguf": "" },
    empty: {},
  });
  const problem = (folder: string) => {
    try {
      loadConfig({ EMBEDDING_MODEL: path.join(root, folder) }, []);
    } catch (error) {
      return (error as Error).message;
    }
    return "no error";
  };
  const st = path.join(root, "st-model");
  t.equal(
    problem("st-model"),
    `Invalid EMBEDDING_MODEL: ${st} is a Hugging Face model folder, and this server runs GGUF files: convert it with ` +
      `llama.cpp's converter, python convert_hf_to_gguf.py ${st} --outfile bge-m3-f16.gguf --outtype f16 ` +
      "(or --outtype q8_0 for a file half the size), and name that file",
  );
  t.match(problem("torch model"), `python convert_hf_to_gguf.py '${path.join(root, "torch model")}' --outfile`, "quoted for the shell");
  t.equal(
    problem("gguf-folder"),
    `Invalid EMBEDDING_MODEL: ${path.join(root, "gguf-folder")} is a folder; name the GGUF file in it, e.g. ${path.join(root, "gguf-folder", "bge-m3-Q8_0.gguf")}`,
  );
  t.match(problem("empty"), /is a folder; this server needs a GGUF file: a local \.gguf path, hf:/);
});

t.test("EMBEDDING_MODEL: an owner/name that is a local file is that file", async (t) => {
  const root = t.testdir({ owner: { model: "" } });
  const cwd = process.cwd();
  process.chdir(root);
  t.teardown(() => process.chdir(cwd));
  t.equal(loadConfig({ EMBEDDING_MODEL: "owner/model" }, []).embeddingModel, "owner/model");
});

t.test("settings that contradict each other are refused, naming both", async (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ MAX_QUEUE: "100" }, /^MAX_QUEUE \(100\) is below MAX_INPUTS \(2048\)/],
    [{ MAX_QUEUE_TOKENS: "200000" }, /^MAX_QUEUE_TOKENS \(200000\) is below the 300000 tokens one admissible request may hold \(min\(MAX_REQUEST_TOKENS, MAX_INPUTS x CONTEXT_SIZE\)\)/],
    [{ MAX_QUEUE_TOKENS: "4000", MAX_INPUTS: "8", CONTEXT_SIZE: "512" }, /below the 4096 tokens/],
    [{ MAX_REQUEST_TOKENS: "1000" }, /^MAX_REQUEST_TOKENS \(1000\) is below CONTEXT_SIZE \(8192\)/],
  ];
  for (const [env, pattern] of cases) t.throws(() => loadConfig(env, []), pattern, JSON.stringify(env));
  t.ok(loadConfig({ MAX_QUEUE: "4", MAX_INPUTS: "4", MAX_QUEUE_TOKENS: "4096", CONTEXT_SIZE: "1024" }, []), "settings that agree load");
  t.equal(loadConfig({}, []).maxRequestTokens, 300_000, "OpenAI's per-request cap by default");
});

t.test("a bad setting stops the process with one line and exit code 1", async (t) => {
  const [bad, contradictory] = [launchTestServer({ PORT: "not-a-port" }), launchTestServer({ MAX_INPUTS: "64" }, [...TSX_ENTRY, "--max-queue", "10"])];
  t.equal((await bad.exited).code, 1);
  t.equal(bad.errors().trim(), 'error: Invalid PORT: expected an integer in [0, 65535], got "not-a-port"');
  t.equal((await contradictory.exited).code, 1);
  t.match(contradictory.errors().trim(), /^error: MAX_QUEUE \(10\) is below MAX_INPUTS \(64\)[^\n]*$/);
});

t.test("--help lists every environment variable", async (t) => {
  const help = launchTestServer({}, [...TSX_ENTRY, "--help"]);
  t.equal((await help.exited).code, 0);
  const output = help.output();
  for (const name of ["ROUTE_PREFIX", "API_KEY", "DEVICE", "EMBEDDING_MODEL", "MODEL_DIR", "CONTEXT_SIZE", "SERVED_MODEL_NAME", "MAX_REQUEST_TOKENS", "DOCS_PUBLIC", "HF_ENDPOINT", "HF_TOKEN", "ATTENTION_PRECISION", "HF_HUB_OFFLINE", "DOWNLOAD_TIMEOUT_MS", "DOWNLOAD_STALL_TIMEOUT_MS", "HTTPS_PROXY", "NO_PROXY", "NODE_EXTRA_CA_CERTS"]) {
    t.match(output, name);
  }
  t.match(output, /REQUEST_TIMEOUT_MS .* gets a 504/, "a timed-out request gets 504, as the code answers");
  t.match(output, /THREADS .* 0 = one per physical core, within the container's CPU quota/);
  t.match(output, /SHUTDOWN_TIMEOUT_MS .* 0 = no deadline/);
});
