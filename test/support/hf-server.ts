import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import { readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";

/**
 * The https stand-in's certificate and key: self-signed for hub.invalid and 127.0.0.1, valid until
 * 2126, made with `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500
 * -subj /CN=hub.invalid -addext subjectAltName=DNS:hub.invalid,IP:127.0.0.1 -addext basicConstraints=critical,CA:TRUE`.
 * A server process trusts it through NODE_EXTRA_CA_CERTS=TEST_CA_FILE, as it would a TLS-inspecting proxy's CA.
 */
export const TEST_CA_FILE = fileURLToPath(new URL("../fixtures/tls/hub.crt", import.meta.url));
const TEST_KEY_FILE = fileURLToPath(new URL("../fixtures/tls/hub.key", import.meta.url));

export interface FakeHub {
  /** Pass as HF_ENDPOINT (HubAccess.endpoint). */
  readonly endpoint: string;
  readonly port: number;
  /** Every request the hub saw, as "METHOD path". */
  readonly requests: string[];
  /** The headers of each request, in the same order. */
  readonly headers: IncomingHttpHeaders[];
  /** When set, a GET sends at most this many bytes of a file (counted from the file's start), then holds the connection open without sending more. */
  stallAfterBytes: number | undefined;
  close(): Promise<void>;
}

export interface FakeHubOptions {
  /** A gated repository: a request without `Authorization: Bearer <token>` gets 401. */
  readonly token?: string;
  /** Serve https with TEST_CA_FILE's certificate. */
  readonly tls?: boolean;
}

/**
 * Serves files under /{owner}/{repo}/resolve/main/{file} the way the Hugging Face endpoint does
 * (HEAD, GET, byte ranges, ETag), on loopback, so the real download code can be tested offline.
 */
export async function startFakeHub(files: Record<string, string>, { token, tls }: FakeHubOptions = {}): Promise<FakeHub> {
  const contents = new Map<string, Buffer>();
  for (const [urlPath, localPath] of Object.entries(files)) contents.set(urlPath, await readFile(localPath));
  const held = new Set<ServerResponse>();
  const hub: FakeHub = {
    endpoint: "",
    port: 0,
    requests: [],
    headers: [],
    stallAfterBytes: undefined,
    close: async () => undefined,
  };
  const handler = (request: IncomingMessage, response: ServerResponse) => {
    const path = decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname);
    hub.requests.push(`${request.method} ${path}`);
    hub.headers.push(request.headers);
    if (token !== undefined && request.headers.authorization !== `Bearer ${token}`) {
      response
        .writeHead(401, { "content-type": "application/json", "x-error-message": "Access to this repository is restricted." })
        .end('{"error":"Access to this repository is restricted"}');
      return;
    }
    const body = contents.get(path);
    if (!body) {
      response.writeHead(404, { "content-type": "application/json", "x-error-code": "EntryNotFound" }).end('{"error":"Entry not found"}');
      return;
    }
    const range = /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? "");
    const start = range ? Number(range[1]) : 0;
    const end = range && range[2] ? Number(range[2]) : body.length - 1;
    const headers = {
      "accept-ranges": "bytes",
      "content-type": "application/octet-stream",
      "content-length": String(end - start + 1),
      etag: '"fake-etag"',
      ...(range ? { "content-range": `bytes ${start}-${end}/${body.length}` } : {}),
    };
    response.writeHead(range ? 206 : 200, headers);
    if (request.method === "HEAD") return response.end();
    const stallAt = hub.stallAfterBytes;
    if (stallAt === undefined) return response.end(body.subarray(start, end + 1));
    response.write(body.subarray(start, Math.max(start, Math.min(stallAt, end + 1))));
    held.add(response); // the client gives up on it; close() ends it
    response.on("close", () => held.delete(response));
  };
  const server = tls ? createTlsServer({ key: await readFile(TEST_KEY_FILE), cert: await readFile(TEST_CA_FILE) }, handler) : createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(hub, {
    endpoint: `${tls ? "https" : "http"}://127.0.0.1:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const response of held) response.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
