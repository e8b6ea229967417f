import type { AddressInfo } from "node:net";
import OpenAI from "openai";
import t from "tap";
import { TINY, testModel } from "./helpers/models.js";
import { cosine, startTestServer } from "./support/app.js";

const server = await startTestServer(await testModel(TINY), { API_KEY: "sk-test", ROUTE_PREFIX: "/api" });
await server.app.listen({ host: "127.0.0.1", port: 0 });
t.teardown(() => server.close());
const { port } = server.app.server.address() as AddressInfo;
const client = new OpenAI({ apiKey: "sk-test", baseURL: `http://127.0.0.1:${port}/api/v1`, maxRetries: 0 });

const texts = ["The official SDK asks for base64 by default.", "Second input", "第三"];

t.test("the official openai client gets correct vectors, base64 (default) and float", async (t) => {
  const viaBase64 = await client.embeddings.create({ model: "bge-m3", input: texts });
  const viaFloat = await client.embeddings.create({ model: "bge-m3", input: texts, encoding_format: "float" });
  t.equal(viaBase64.data.length, 3);
  t.equal(viaBase64.model, "bge-m3");
  t.ok(viaBase64.usage.prompt_tokens > 6);
  t.equal(viaBase64.usage.total_tokens, viaFloat.usage.total_tokens);
  for (let i = 0; i < texts.length; i++) {
    const a = viaBase64.data[i].embedding;
    const b = viaFloat.data[i].embedding;
    t.equal(a.length, server.service.embedder.info.dimensions);
    t.ok(a.every((x) => Number.isFinite(x)), "decoded numbers, not garbage");
    t.ok(cosine(a, b) > 0.999999, `input ${i}: base64 and float agree`);
  }
  const short = await client.embeddings.create({ model: "bge-m3", input: "cut", dimensions: 32 });
  t.equal(short.data[0].embedding.length, 32);
});

t.test("the client sees OpenAI errors", async (t) => {
  const wrongKey = new OpenAI({ apiKey: "nope", baseURL: `http://127.0.0.1:${port}/api/v1`, maxRetries: 0 });
  const unauthorized = await wrongKey.embeddings.create({ model: "bge-m3", input: "x" }).catch((e: unknown) => e);
  t.ok(unauthorized instanceof OpenAI.AuthenticationError, "401 as the SDK's AuthenticationError");
  const error = await client.embeddings.create({ model: "bge-m3", input: "" }).catch((e: unknown) => e);
  t.ok(error instanceof OpenAI.BadRequestError);
  t.equal((error as InstanceType<typeof OpenAI.BadRequestError>).param, "input");
  const models = await client.models.list();
  t.same(models.data.map((m) => m.id), ["bge-m3"]);
});
