import { createServer, type IncomingMessage, type Server } from "node:http";
import { readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";

export interface FakeHub {
  /** Pass as HF_ENDPOINT (HubAccess.endpoint). */
  readonly endpoint: string;
  /** Every request the hub saw, as "METHOD path". */
  readonly requests: string[];
  close(): Promise<void>;
}

/**
 * Serves files under /{owner}/{repo}/resolve/main/{file} the way the Hugging Face endpoint does
 * (HEAD, GET, byte ranges), on loopback, so the real download code can be tested offline. With `token`,
 * it is a gated repository: a request without `Authorization: Bearer <token>` gets 401.
 */
export async function startFakeHub(files: Record<string, string>, { token }: { token?: string } = {}): Promise<FakeHub> {
  const contents = new Map<string, Buffer>();
  for (const [urlPath, localPath] of Object.entries(files)) contents.set(urlPath, await readFile(localPath));
  const requests: string[] = [];
  const server: Server = createServer((request: IncomingMessage, response) => {
    const path = decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname);
    requests.push(`${request.method} ${path}`);
    if (token !== undefined && request.headers.authorization !== `Bearer ${token}`) {
      response.writeHead(401, { "content-type": "application/json" }).end('{"error":"Access to this repository is restricted"}');
      return;
    }
    const body = contents.get(path);
    if (!body) {
      response.writeHead(404, { "content-type": "application/json" }).end('{"error":"Entry not found"}');
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
    if (request.method === "HEAD") response.end();
    else response.end(body.subarray(start, end + 1));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}/`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
