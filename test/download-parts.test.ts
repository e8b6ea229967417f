// The downloader's parts in-process: file names, proxy choice, resuming, redirects, retries. The
// server-process view of the same (log lines, exit codes) is model-download.test.ts.
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import t, { type Test } from "tap";
import { loadConfig } from "../src/config/load.js";
import { DEFAULT_DOWNLOAD_SETTINGS, downloadFile, type DownloadEvent, type DownloadSource } from "../src/model/download/download.js";
import { downloadMessage } from "../src/model/download/messages.js";
import { proxyFor, readProxyEnvironment } from "../src/model/download/proxy.js";
import { remoteModel } from "../src/model/resolve.js";
import { startFakeHub } from "./support/hf-server.js";

const dir = await mkdtemp(path.join(tmpdir(), "bge-m3-download-parts-"));
t.teardown(() => rm(dir, { recursive: true, force: true }));
const bytes = randomBytes(300_000);

/** A loopback server answering with `handler`; its URL. */
async function serve(t: Test, handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Answers GETs of `body` with ETag `etag()` and honours Range with If-Range, as the hub's storage does. */
function fileHandler(body: Buffer, etag: () => string, seen: IncomingMessage["headers"][]) {
  return (request: IncomingMessage, response: ServerResponse) => {
    seen.push(request.headers);
    const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? "");
    const ifRange = request.headers["if-range"];
    if (range && (ifRange === undefined || ifRange === etag())) {
      const start = Number(range[1]);
      response.writeHead(206, { etag: etag(), "content-length": body.length - start, "content-range": `bytes ${start}-${body.length - 1}/${body.length}` });
      return response.end(body.subarray(start));
    }
    response.writeHead(200, { etag: etag(), "content-length": body.length }).end(body);
  };
}

const source = (url: string, name: string, extra: Partial<DownloadSource> = {}): DownloadSource => ({
  url,
  file: path.join(dir, name),
  label: "model",
  setting: "EMBEDDING_MODEL",
  elsewhere: "or copy it",
  ...extra,
});

const fast = { ...DEFAULT_DOWNLOAD_SETTINGS, timeoutMs: 20_000, stallTimeoutMs: 5000 };

t.test("hf: files keep node-llama-cpp's names, so a MODEL_DIR it filled is found", async (t) => {
  // what node-llama-cpp 3.21's resolveModelFile names them (its "No model file found at" path with download: false)
  const names: Record<string, string> = {
    "hf:gpustack/bge-m3-GGUF/bge-m3-Q8_0.gguf": "hf_gpustack_bge-m3-Q8_0.gguf",
    "hf:owner/repo/model.gguf": "hf_owner_repo_model.gguf",
    "hf:owner/repo/sub/dir/model.gguf": "hf_owner_repo_sub__dir_model.gguf",
    "hf:owner/repo/model/model.gguf": "hf_owner_repo_model.gguf",
    "hf:owner/bge-GGUF/other.gguf": "hf_owner_bge-GGUF_other.gguf",
    "hf:owner/repo/model.gguf#dev": "hf_owner_repo_dev_model.gguf",
    "hf:owner/repo/model.gguf#refs/pr/1": "hf_owner_repo_refs!pr!1_model.gguf",
    "https://huggingface.co/owner/repo/resolve/main/folder/model.gguf": "hf_owner_repo_folder_model.gguf",
    "https://huggingface.co/owner/repo/blob/main/model.gguf": "hf_owner_repo_model.gguf",
  };
  const { resolveModelFile } = await import("node-llama-cpp");
  for (const [reference, name] of Object.entries(names)) {
    await t.rejects(resolveModelFile(reference, { directory: dir, download: false, cli: false }), { message: new RegExp(`"${path.join(dir, name).replace(/[.!]/g, "\\$&")}"`) }, `node-llama-cpp: ${reference}`);
    t.equal(remoteModel(reference, dir).file, path.join(dir, name), reference);
  }
  t.equal(remoteModel("https://example.com/files/bge-m3%20q8.gguf?download=true", dir).file, path.join(dir, "bge-m3 q8.gguf"), "other URLs: the last path segment");
  t.equal(remoteModel("hf:owner/repo/a/b.gguf#dev", dir, { endpoint: "https://mirror.example/hf/", token: "", offline: false }).url, "https://mirror.example/hf/owner/repo/resolve/dev/a/b.gguf");
});

t.test("an hf: reference that names no file is refused at start", async (t) => {
  const refused: [string, RegExp][] = [
    ["hf:owner/repo", /Invalid EMBEDDING_MODEL: "hf:owner\/repo" names no file: write hf:<owner>\/<repo>\/<file>\.gguf/],
    ["hf:owner/repo:Q8_0", /names no file/],
    ["hf:owner", /is not a Hugging Face file/],
    ["hf:owner/repo/../x.gguf", /has an empty, \. or \.\. part/],
    ["https://example.com/", /names no file: give the URL of a \.gguf file/],
  ];
  for (const [value, message] of refused) t.throws(() => loadConfig({ EMBEDDING_MODEL: value }, []), message, value);
});

t.test("HTTPS_PROXY for https, HTTP_PROXY for http, lower-case first, NO_PROXY as curl reads it", async (t) => {
  const env = readProxyEnvironment({ HTTPS_PROXY: "http://upper:3128", https_proxy: "http://lower:3128", HTTP_PROXY: "plain:8080", NO_PROXY: "internal.example, .corp.example,10.0.0.0/8,mirror:8443,[::1]" });
  const via = (url: string) => proxyFor(new URL(url), env)?.href;
  t.equal(via("https://huggingface.co/x"), "http://lower:3128/", "lower-case wins, as curl and the Hugging Face tools read them");
  t.equal(via("http://huggingface.co/x"), "http://plain:8080/", "a proxy without a scheme is http");
  for (const bypassed of ["https://internal.example/x", "https://a.internal.example/x", "https://corp.example/x", "https://b.corp.example/x", "https://10.1.2.3/x", "https://mirror:8443/x", "http://[::1]/x"]) {
    t.equal(via(bypassed), undefined, `NO_PROXY: ${bypassed}`);
  }
  for (const proxied of ["https://notinternal.example/x", "https://11.0.0.1/x", "https://mirror/x"]) t.ok(via(proxied), `proxied: ${proxied}`);
  t.equal(proxyFor(new URL("https://x/"), readProxyEnvironment({ HTTPS_PROXY: "http://p:1", NO_PROXY: "*" })), undefined, "NO_PROXY=* bypasses all");
  t.equal(proxyFor(new URL("https://x/"), readProxyEnvironment({})), undefined);
  t.throws(() => proxyFor(new URL("https://x/"), readProxyEnvironment({ HTTPS_PROXY: "socks5://user:secret@p:1080" })), /HTTPS_PROXY=socks5:\/\/user:\*\*\*@p:1080: only http:\/\/ proxies are supported/);
});

t.test("a partial file whose server copy changed (If-Range) starts over and gets the new bytes", async (t) => {
  const seen: IncomingMessage["headers"][] = [];
  const url = await serve(t, fileHandler(bytes, () => '"v2"', seen));
  const target = source(`${url}/model.gguf`, "changed.gguf");
  await writeFile(`${target.file}.partial`, Buffer.alloc(1000, 7));
  await writeFile(`${target.file}.partial.json`, JSON.stringify({ validator: '"v1"', totalBytes: bytes.length }));
  const events: DownloadEvent[] = [];
  await downloadFile(target, { settings: fast, onEvent: (event) => events.push(event) });
  t.match(events[0], { type: "start", resumeFrom: 1000 });
  t.match(seen, [{ range: "bytes=1000-", "if-range": '"v1"' }]);
  t.ok((await readFile(target.file)).equals(bytes), "the new file, whole");
  t.same((await readdir(dir)).filter((name) => name.startsWith("changed")), ["changed.gguf"]);
});

t.test("a body cut short and a 503: retried, resumed with Range, complete", async (t) => {
  const seen: IncomingMessage["headers"][] = [];
  let requests = 0;
  const whole = fileHandler(bytes, () => '"v1"', seen);
  const url = await serve(t, (request, response) => {
    requests++;
    if (requests === 1) {
      seen.push(request.headers);
      response.writeHead(200, { etag: '"v1"', "content-length": bytes.length });
      response.write(bytes.subarray(0, 100_000), () => response.destroy());
    } else if (requests === 2) {
      seen.push(request.headers);
      response.writeHead(503, { "retry-after": "0" }).end();
    } else whole(request, response);
  });
  const target = source(`${url}/model.gguf`, "cut.gguf");
  const events: DownloadEvent[] = [];
  await downloadFile(target, { settings: fast, onEvent: (event) => events.push(event) });
  const retries = events.filter((event) => event.type === "retry").map(downloadMessage);
  t.equal(retries.length, 2, retries.join("\n"));
  t.match(retries[0], /^model download attempt 1 failed at [\d.]+%: 127\.0\.0\.1:\d+ (closed the connection after 100\.0 kB of 300\.0 kB|reset the connection|closed the connection early)/);
  t.match(retries[1], /^model download attempt 2 failed at [\d.]+%: http:\/\/127\.0\.0\.1:\d+\/model\.gguf answered HTTP 503 Service Unavailable; trying again in 0\.0 s/, "Retry-After is honoured");
  const ranges = seen.map((headers) => headers.range);
  const received = Number(/^bytes=(\d+)-$/.exec(ranges[1] ?? "")?.[1]);
  t.ok(received > 0 && received <= 100_000, `asked for the rest after the ${received} bytes that arrived`);
  t.same(ranges, [undefined, `bytes=${received}-`, `bytes=${received}-`]);
  t.ok((await readFile(target.file)).equals(bytes));
});

t.test("HF_TOKEN goes to the hub's host only, not to the host it redirects to", async (t) => {
  const storage: IncomingMessage["headers"][] = [];
  const cdn = await serve(t, fileHandler(bytes, () => '"v1"', storage));
  const hubSeen: IncomingMessage["headers"][] = [];
  const hub = await serve(t, (request, response) => {
    hubSeen.push(request.headers);
    response.writeHead(302, { location: `${cdn}/signed/model.gguf` }).end();
  });
  await downloadFile(source(`${hub}/owner/repo/resolve/main/model.gguf`, "redirected.gguf", { token: "hf_secret" }), { settings: fast });
  t.equal(hubSeen[0].authorization, "Bearer hf_secret");
  t.equal(storage[0].authorization, undefined);
  t.ok((await readFile(path.join(dir, "redirected.gguf"))).equals(bytes));
});

t.test("a certificate the machine does not trust: not retried, and NODE_EXTRA_CA_CERTS is the advice", async (t) => {
  const served = path.join(dir, "tls-source.bin");
  await writeFile(served, bytes);
  const hub = await startFakeHub({ "/model.gguf": served }, { tls: true });
  t.teardown(() => hub.close());
  const events: DownloadEvent[] = [];
  await t.rejects(downloadFile(source(`${hub.endpoint}model.gguf`, "untrusted.gguf"), { settings: fast, onEvent: (event) => events.push(event) }), {
    name: "DownloadError",
    message: /^could not download the model from https:\/\/127\.0\.0\.1:\d+\/model\.gguf: 127\.0\.0\.1:\d+: the TLS certificate is not trusted \((DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN)\); behind a TLS-inspecting proxy, add its CA certificate with NODE_EXTRA_CA_CERTS=\/path\/to\/ca\.pem; or copy it$/,
  });
  t.equal(events.filter((event) => event.type === "retry").length, 0);
});
