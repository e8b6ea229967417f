// Coming from embedding-bge-m3-api (the Python server this one replaces): its README's request and its
// compose file's settings, against the real server.
import { execFile, spawnSync } from "node:child_process";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import t, { type Test } from "tap";
import { launchTestServer } from "../scripts/bench/server-process.js";
import { TINY, testModel } from "./helpers/models.js";
import { cosine, startTestServer, type TestServer } from "./support/app.js";

/** The request of embedding-bge-m3-api's README (azicen/embedding-api, bge-m3/README.md), byte for byte. */
const OLD_README_CURL = `curl --request POST \\
  --url http://localhost:8000/v1/embeddings \\
  -H "Authorization: Bearer $API_KEY" \\
  -H "Content-Type: application/json" \\
  -d '{
    "input": "The food was delicious and the waiter...",
    "model": "any-value",
    "encoding_format": "float"
  }'`;

/** The body as curl sends it: `-d '…'` passes the text unchanged, newlines and indentation included. */
const OLD_README_BODY = /-d '([^']*)'/.exec(OLD_README_CURL)![1];

const hasCurl = spawnSync("curl", ["--version"]).status === 0;

interface EmbeddingsBody {
  object: string;
  data: { object: string; index: number; embedding: number[] }[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

const modelPath = await testModel(TINY);

async function listening(env: Record<string, string>): Promise<{ server: TestServer; origin: string }> {
  const server = await startTestServer(modelPath, env);
  t.teardown(() => server.close());
  await server.app.listen({ host: "127.0.0.1", port: 0 });
  const { port } = server.app.server.address() as AddressInfo;
  return { server, origin: `http://127.0.0.1:${port}` };
}

const API_KEY = "sk-old-key";
/** The old compose file's API_KEY: "" (open), and one with a key. */
const servers = { open: await listening({}), keyed: await listening({ API_KEY }) };

/** The old README's curl command as a shell runs it, `$API_KEY` from the environment; only the address differs. */
async function runOldCurl(origin: string, apiKey: string | undefined): Promise<unknown> {
  const command = OLD_README_CURL.replace("http://localhost:8000", origin);
  const env = { ...process.env, API_KEY: apiKey };
  if (apiKey === undefined) delete env.API_KEY;
  const { stdout } = await promisify(execFile)("bash", ["-c", command], { env });
  return JSON.parse(stdout);
}

function checkOldReadmeAnswer(t: Test, body: EmbeddingsBody, dimensions: number): void {
  t.equal(body.object, "list");
  t.equal(body.model, "any-value", "the model name is echoed, as the old server did");
  t.equal(body.data.length, 1);
  t.same({ object: body.data[0].object, index: body.data[0].index }, { object: "embedding", index: 0 });
  t.equal(body.data[0].embedding.length, dimensions);
  t.ok(Math.abs(Math.hypot(...body.data[0].embedding) - 1) < 1e-5, "a unit vector, as the old server's");
  t.ok(body.usage.prompt_tokens > 2 && body.usage.total_tokens === body.usage.prompt_tokens, JSON.stringify(body.usage));
}

for (const apiKey of [undefined, API_KEY]) {
  t.test(`the old README's curl request works unchanged (API_KEY ${apiKey ? "set" : "unset"})`, async (t) => {
    const { server, origin } = apiKey ? servers.keyed : servers.open;
    const dimensions = server.service.embedder.info.dimensions;
    // What curl puts on the wire, also where curl is not installed; unset API_KEY sends "Bearer ".
    const response = await fetch(`${origin}/v1/embeddings`, {
      method: "POST",
      headers: { Authorization: `Bearer ${apiKey ?? ""}`, "Content-Type": "application/json" },
      body: OLD_README_BODY,
    });
    t.equal(response.status, 200);
    const body = (await response.json()) as EmbeddingsBody;
    checkOldReadmeAnswer(t, body, dimensions);
    await t.test("and so does the command itself, run by a shell", { skip: !hasCurl && "curl is not installed" }, async (t) => {
      const viaCurl = (await runOldCurl(origin, apiKey)) as EmbeddingsBody;
      checkOldReadmeAnswer(t, viaCurl, dimensions);
      t.ok(cosine(viaCurl.data[0].embedding, body.data[0].embedding) > 0.999999, "curl gets the same vector");
    });
  });
}

t.test("the old README's curl with a wrong key is a 401 in OpenAI's shape", { skip: !hasCurl && "curl is not installed" }, async (t) => {
  const body = (await runOldCurl(servers.keyed.origin, "not-the-key")) as { error: { type: string; code: string | null } };
  t.match(body.error, { type: "authentication_error", code: "invalid_api_key" });
});

t.test("the old compose file's EMBEDDING_MODEL stops start-up with one line saying what to set", async (t) => {
  const server = launchTestServer({ EMBEDDING_MODEL: "BAAI/bge-m3-unsupervised" });
  t.equal((await server.exited).code, 1);
  const lines = server.errors().trim().split("\n");
  t.equal(lines.length, 1, server.errors());
  t.match(lines[0], /^error: Invalid EMBEDDING_MODEL: "BAAI\/bge-m3-unsupervised" is a Hugging Face model id .*hf:<owner>\/<repo>\/<file>\.gguf/);
  t.equal(server.output(), server.errors(), "it failed before listening or downloading anything: no log line");
});
