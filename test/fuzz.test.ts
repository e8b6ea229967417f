import { connect } from "node:net";
import type { AddressInfo } from "node:net";
import t, { type Test } from "tap";
import { TINY, testModel } from "./helpers/models.js";
import { startTestServer } from "./support/app.js";

// Generated bad requests, each must get a 4xx in OpenAI's error shape; the server must stay up and
// keep giving the same vector for a known input.
const server = await startTestServer(await testModel(TINY), { BODY_LIMIT: String(256 * 1024), MAX_INPUTS: "64" });
await server.app.listen({ host: "127.0.0.1", port: 0 });
t.teardown(() => server.close());
const { port } = server.app.server.address() as AddressInfo;
const nVocab = server.service.embedder.info.nVocab;

let seed = 12345;
const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];

const junkValues: unknown[] = [
  null, true, false, 0, -1, 1.5, 1e400, -1e400, "", "x", {}, { a: 1 }, [], [null], [true], [{}], [[[]]], [1, "a"], ["a", 2],
  [[1, 2], "x"], [[1.5]], [[-3]], [[nVocab]], [nVocab + 10], [2 ** 53], [[1], [2, [3]]], "\u0000", { input: "nested" },
];

function jsonCases(): { name: string; payload: string }[] {
  const cases: { name: string; payload: string }[] = [];
  const add = (name: string, body: unknown) => cases.push({ name, payload: JSON.stringify(body) });
  for (const value of junkValues) if (!(typeof value === "string" && value.length > 0)) add(`input=${JSON.stringify(value)}`, { input: value });
  for (const field of ["encoding_format", "dimensions", "truncate", "model", "user"]) {
    for (const value of junkValues) {
      const valid: Record<string, (v: unknown) => boolean> = {
        encoding_format: (v) => v === null,
        dimensions: (v) => v === null,
        truncate: (v) => typeof v === "boolean",
        model: (v) => typeof v === "string" || v === null,
        user: (v) => typeof v === "string" || v === null,
      };
      if (valid[field](JSON.parse(JSON.stringify(value)))) continue;
      add(`${field}=${JSON.stringify(value)}`, { input: "ok", [field]: value });
    }
  }
  for (let i = 0; i < 40; i++) {
    const length = 1 + Math.floor(random() * 20);
    const ids = Array.from({ length }, () => Math.floor(random() * 1000));
    const bad = pick([-1 - Math.floor(random() * 1e6), nVocab + Math.floor(random() * 1e6), 0.5 + Math.floor(random() * 100), 2 ** 40]);
    ids[Math.floor(random() * length)] = bad;
    add(`ids with ${bad}`, random() < 0.5 ? { input: ids } : { input: [[5, 6], ids] });
  }
  for (const dimensions of [0, -5, 1025, 4096, 1.5, 1e9]) add(`dimensions=${dimensions}`, { input: "x", dimensions });
  add("too many inputs", { input: Array.from({ length: 65 }, (_, i) => `text ${i}`) });
  add("too many token lists", { input: Array.from({ length: 65 }, () => [5, 6]) });
  add("an empty string in a list", { input: ["a", "b", ""] });
  add("no input", { model: "bge-m3" });
  add("a top-level array", [{ input: "x" }]);
  add("a top-level string", "input");
  add("a top-level number", 42);
  add("null body", null);
  cases.push({ name: "deeply nested arrays", payload: `{"input":${"[".repeat(200_000)}${"]".repeat(200_000)}}` });
  cases.push({ name: "deeply nested objects", payload: `${'{"a":'.repeat(50_000)}1${"}".repeat(50_000)}` });
  cases.push({ name: "a __proto__ key", payload: '{"input":"x","__proto__":{"polluted":true}}' });
  cases.push({ name: "a constructor.prototype key", payload: '{"input":"x","constructor":{"prototype":{"polluted":true}}}' });
  cases.push({ name: "body over the limit", payload: JSON.stringify({ input: "y".repeat(300 * 1024) }) });
  cases.push({ name: "huge id array over the limit", payload: JSON.stringify({ input: Array.from({ length: 60_000 }, () => 12345) }) });
  for (const broken of ['{"input": "x"', '{"input": }', "{input: 'x'}", '{"input": "x"}}', "[", "nul", '{"input": "\\x"}', '{"input":"a"} trailing']) {
    cases.push({ name: `broken json ${broken}`, payload: broken });
  }
  return cases;
}

function rawRequest(payload: Buffer | string, headers: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    let data = "";
    socket.on("data", (chunk) => (data += chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
      const chunked = /transfer-encoding: chunked/i.test(data);
      let body = data.slice(data.indexOf("\r\n\r\n") + 4);
      if (chunked) body = body.split("\r\n").filter((_, i) => i % 2 === 1).join("");
      resolve({ status, body });
    });
    socket.write(headers);
    socket.write(payload);
  });
}

function post(payload: Buffer | string, extraHeaders = "", contentType = "application/json") {
  const bytes = typeof payload === "string" ? Buffer.from(payload) : payload;
  return rawRequest(
    bytes,
    `POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: ${contentType}\r\nContent-Length: ${bytes.length}\r\n${extraHeaders}\r\n`,
  );
}

function headerCases(): { name: string; send: () => Promise<{ status: number; body: string }> }[] {
  const body = '{"input":"x"}';
  return [
    { name: "content-length not a number", send: () => rawRequest(body, `POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n`) },
    { name: "two content-lengths", send: () => rawRequest(body, `POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 13\r\nContent-Length: 14\r\n\r\n`) },
    { name: "header overflow", send: () => rawRequest(body, `POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n`) },
    { name: "bad chunked body", send: () => rawRequest("zz\r\nnot-hex\r\n", `POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`) },
    { name: "garbage request line", send: () => rawRequest("", `\u0001\u0002 / HTTP/1.1\r\n\r\n`) },
    { name: "header without colon", send: () => rawRequest(body, `POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nBroken header line\r\nContent-Length: 13\r\n\r\n`) },
    { name: "text/plain body", send: () => post(body, "", "text/plain") },
    { name: "form body", send: () => post("input=x", "", "application/x-www-form-urlencoded") },
    { name: "xml body", send: () => post("<input>x</input>", "", "application/xml") },
    { name: "no content type", send: () => rawRequest(body, `POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 13\r\n\r\n`) },
    { name: "invalid UTF-8 (lone continuation byte)", send: () => post(Buffer.concat([Buffer.from('{"input":"a'), Buffer.from([0x80]), Buffer.from('"}')])) },
    { name: "invalid UTF-8 (truncated sequence)", send: () => post(Buffer.concat([Buffer.from('{"input":"a'), Buffer.from([0xe2, 0x82]), Buffer.from('"}')])) },
    { name: "invalid UTF-8 (overlong)", send: () => post(Buffer.concat([Buffer.from('{"input":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')])) },
    { name: "invalid UTF-8 (surrogate)", send: () => post(Buffer.concat([Buffer.from('{"input":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')])) },
    { name: "utf-16 body", send: () => post(Buffer.from('{"input":"x"}', "utf16le")) },
    { name: "empty body", send: () => post("") },
    { name: "whitespace body", send: () => post("   \n ") },
  ];
}

async function knownVector(): Promise<number[]> {
  const response = await server.app.inject({ method: "POST", url: "/v1/embeddings", payload: { input: "a known input" } });
  return response.json().data[0].embedding;
}

function checkShape(t: Test, name: string, status: number, body: string): void {
  t.ok(status >= 400 && status < 500, `${name}: status ${status}`);
  let parsed: { error?: Record<string, unknown> } = {};
  try {
    parsed = JSON.parse(body);
  } catch {
    t.fail(`${name}: body is not JSON: ${body.slice(0, 200)}`);
    return;
  }
  const error = parsed.error ?? {};
  t.ok(typeof error.message === "string" && (error.message as string).length > 0, `${name}: message`);
  t.ok(typeof error.type === "string", `${name}: type`);
  t.ok("param" in error && "code" in error, `${name}: param and code`);
}

t.test("hundreds of bad requests get 4xx in OpenAI's shape; the server stays correct", async (t) => {
  const before = await knownVector();
  const json = jsonCases();
  const raw = headerCases();
  t.ok(json.length + raw.length >= 200, `${json.length + raw.length} generated requests`);
  for (const { name, payload } of json) {
    const { status, body } = await post(payload);
    checkShape(t, name, status, body);
  }
  for (const { name, send } of raw) {
    const { status, body } = await send();
    checkShape(t, name, status, body);
  }
  const health = await fetch(`http://127.0.0.1:${port}/health`);
  t.equal(health.status, 200, "still up");
  t.same(await knownVector(), before, "same vector as before");
});

t.test("prototype keys are refused, as Fastify's own parser refuses them, with the reason", async (t) => {
  for (const payload of ['{"input":"x","__proto__":{"polluted":true}}', '{"input":"x","constructor":{"prototype":{"polluted":true}}}']) {
    const { status, body } = await post(payload);
    t.equal(status, 400, payload);
    t.match(JSON.parse(body).error, { code: "invalid_json", message: /forbidden prototype property/ });
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined, "nothing leaked into Object.prototype");
});
