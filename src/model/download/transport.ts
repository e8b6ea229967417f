import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { isIP, type Socket } from "node:net";
import tls from "node:tls";
import { DownloadFailure, networkFailure, statusFailure, type Peer } from "./failure.js";
import { proxyLabel } from "./proxy.js";

export interface GetRequest {
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  /** An http:// proxy (from proxyFor), or undefined to connect directly. */
  readonly proxy?: URL;
  /** Aborting destroys the socket (the stall watchdog and the deadline do). */
  readonly signal: AbortSignal;
}

const defaultPort = (url: URL): string => url.port || (url.protocol === "https:" ? "443" : "80");
const targetPeer = (url: URL): Peer => ({ host: url.hostname, port: defaultPort(url) });
const proxyPeer = (url: URL, proxy: URL): Peer => ({
  host: proxy.hostname,
  port: defaultPort(proxy),
  proxyVariable: url.protocol === "https:" ? "HTTPS_PROXY" : "HTTP_PROXY",
});

function proxyAuthorization(proxy: URL): Record<string, string> {
  if (!proxy.username) return {};
  const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
  return { "proxy-authorization": `Basic ${Buffer.from(credentials).toString("base64")}` };
}

/** Sends the request and resolves with the response head; socket errors become DownloadFailures naming `peer`. */
function send(module: typeof http | typeof https, options: https.RequestOptions, peer: () => Peer): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const request = module.request(options, resolve);
    request.once("error", (error) => reject(networkFailure(error, peer())));
    request.end();
  });
}

/** A TCP tunnel to `url`'s host through the proxy (HTTP CONNECT), as curl opens one for https. */
function connectTunnel(url: URL, proxy: URL, signal: AbortSignal): Promise<Socket> {
  const authority = `${url.hostname}:${defaultPort(url)}`;
  return new Promise((resolve, reject) => {
    const request = http.request({
      host: proxy.hostname,
      port: defaultPort(proxy),
      method: "CONNECT",
      path: authority,
      headers: { host: authority, ...proxyAuthorization(proxy) },
      signal,
    });
    request.once("connect", (response, socket) => {
      if (response.statusCode === 200) return resolve(socket);
      socket.destroy();
      const failure = statusFailure(`the proxy ${proxyLabel(proxy)}`, response.statusCode ?? 0, `${response.statusMessage ?? ""} to CONNECT ${authority}`, response.headers);
      // the proxy's 403 or 502 is about the proxy's rules or its own way out, not the hub's repository
      reject(response.statusCode === 407 ? failure : new DownloadFailure(failure.message, failure.transient, "proxy", failure.retryAfterMs));
    });
    request.once("error", (error) => reject(networkFailure(error, proxyPeer(url, proxy))));
    request.end();
  });
}

/**
 * One GET, no redirects followed. Directly; through `proxy` in absolute form for http:// (as curl);
 * through a CONNECT tunnel with TLS end to end for https://, so the proxy sees only the host name.
 */
export async function get({ url, headers, proxy, signal }: GetRequest): Promise<IncomingMessage> {
  const client = url.protocol === "https:" ? https : http;
  if (!proxy) return send(client, { ...urlParts(url), headers, signal }, () => targetPeer(url));
  if (url.protocol === "http:") {
    const options = { host: proxy.hostname, port: defaultPort(proxy), path: url.href, headers: { ...headers, host: url.host, ...proxyAuthorization(proxy) }, signal };
    return send(http, options, () => proxyPeer(url, proxy));
  }
  const tunnel = await connectTunnel(url, proxy, signal);
  signal.addEventListener("abort", () => tunnel.destroy(), { once: true });
  const secure = tls.connect({ socket: tunnel, servername: isIP(url.hostname) ? undefined : url.hostname, ALPNProtocols: ["http/1.1"] });
  // the request below reports the socket's errors once it has the socket; one before that must not crash the process
  secure.on("error", () => undefined);
  return send(https, { ...urlParts(url), headers, signal, createConnection: () => secure }, () => targetPeer(url));
}

function urlParts(url: URL): https.RequestOptions {
  return { protocol: url.protocol, hostname: url.hostname.replace(/^\[|\]$/g, ""), port: defaultPort(url), path: `${url.pathname}${url.search}` };
}
