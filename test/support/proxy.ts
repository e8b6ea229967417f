import { createServer, request as httpRequest } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";

export interface TestProxy {
  /** Pass as HTTPS_PROXY / HTTP_PROXY. */
  readonly url: string;
  /** What it was asked, as "CONNECT host:port" or "GET http://host/path". */
  readonly seen: string[];
  close(): Promise<void>;
}

/**
 * A small forward proxy on loopback, as a corporate one behaves: CONNECT tunnels for https and
 * absolute-form requests for http. It reaches every host through `route`, so a test can name hosts
 * that resolve nowhere else (hub.invalid): a download that gets there went through the proxy.
 */
export async function startProxy(route: (host: string, port: number) => { host: string; port: number }): Promise<TestProxy> {
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((request, response) => {
    seen.push(`${request.method} ${request.url}`);
    const target = new URL(request.url ?? "");
    const to = route(target.hostname, Number(target.port || 80));
    const upstream = httpRequest(
      { host: to.host, port: to.port, method: request.method, path: `${target.pathname}${target.search}`, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    upstream.on("error", () => response.writeHead(502).end());
    request.pipe(upstream);
  });
  server.on("connect", (request, client: Socket, head: Buffer) => {
    seen.push(`CONNECT ${request.url}`);
    const [host, port] = (request.url ?? "").split(":");
    const to = route(host, Number(port));
    const upstream = connect(to.port, to.host, () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => (socket === client ? upstream : client).destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
