/** What a person can do about a failure; download.ts turns it into words naming the setting involved. */
export type Advice = "dns" | "network" | "proxy" | "proxy-credentials" | "access" | "missing" | "tls" | "stall" | "server" | "disk";

/** Why one attempt failed: a one-line reason, whether another attempt may succeed, and the advice. */
export class DownloadFailure extends Error {
  override name = "DownloadFailure";
  constructor(
    message: string,
    readonly transient: boolean,
    readonly advice: Advice,
    /** The server's Retry-After (ms), when it sent one. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** Where a socket went: the download's host, or the proxy on the way to it. */
export interface Peer {
  readonly host: string;
  /** Absent when the error is not about one connection (the file system, say). */
  readonly port?: string;
  /** Set when the peer is a proxy: the variable it came from (HTTPS_PROXY, HTTP_PROXY). */
  readonly proxyVariable?: string;
}

/** Socket errors that another attempt may get past, in words. */
const TRANSIENT_CODES: Record<string, string> = {
  ECONNREFUSED: "refused the connection",
  ECONNRESET: "reset the connection",
  ECONNABORTED: "aborted the connection",
  EPIPE: "closed the connection",
  ETIMEDOUT: "did not answer (timed out)",
  ENETUNREACH: "is on a network this machine cannot reach",
  ENETDOWN: "is unreachable: the network is down",
  EHOSTUNREACH: "is unreachable (no route)",
  EHOSTDOWN: "is down",
  ERR_STREAM_PREMATURE_CLOSE: "closed the connection early",
};

/** Node's codes for a certificate that does not verify. */
const TLS_CODES = new Set([
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_GET_ISSUER_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

/** A socket-level error (DNS, TCP, TLS) as a DownloadFailure naming the peer. */
export function networkFailure(error: unknown, peer: Peer): DownloadFailure {
  if (error instanceof DownloadFailure) return error;
  const { code = "", message = String(error) } = error as NodeJS.ErrnoException;
  const address = peer.port ? `${peer.host}:${peer.port}` : peer.host;
  const who = peer.proxyVariable ? `the proxy ${address} (${peer.proxyVariable})` : address;
  const advice = peer.proxyVariable ? "proxy" : "network";
  if (code === "ENOTFOUND") return new DownloadFailure(`cannot resolve ${peer.proxyVariable ? `the proxy's host ${peer.host}` : peer.host} (ENOTFOUND)`, false, peer.proxyVariable ? "proxy" : "dns");
  if (code === "EAI_AGAIN") return new DownloadFailure(`cannot resolve ${peer.host} (EAI_AGAIN: the DNS did not answer)`, true, peer.proxyVariable ? "proxy" : "dns");
  if (TLS_CODES.has(code)) return new DownloadFailure(`${who}: the TLS certificate is not trusted (${code})`, false, "tls");
  if (["ENOSPC", "EACCES", "EROFS", "EPERM", "EDQUOT"].includes(code)) return new DownloadFailure(`${message}`, false, "disk");
  const words = TRANSIENT_CODES[code];
  return new DownloadFailure(words ? `${who} ${words} (${code})` : `${who}: ${message}${code && !message.includes(code) ? ` (${code})` : ""}`, true, advice);
}

/** Retry-After in ms (seconds or an HTTP date), when present and sane. */
function retryAfter(header: string | undefined): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(header) - Date.now();
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/** A response that is not the file: permanent for what the request itself got wrong, transient for an overloaded or failing server. */
export function statusFailure(url: string, status: number, statusText: string, headers: Record<string, string | string[] | undefined>): DownloadFailure {
  // the hub explains 401/403/404 in a header (gated repository, missing entry)
  const detail = typeof headers["x-error-message"] === "string" ? ` (${headers["x-error-message"].slice(0, 200)})` : "";
  const reason = `${url} answered HTTP ${status} ${statusText}`.trim() + detail;
  if (status === 401 || status === 403) return new DownloadFailure(reason, false, "access");
  if (status === 404 || status === 410) return new DownloadFailure(reason, false, "missing");
  if (status === 407) return new DownloadFailure(reason, false, "proxy-credentials");
  const wait = retryAfter(headers["retry-after"] as string | undefined);
  if (status === 408 || status === 425 || status === 429 || status >= 500) return new DownloadFailure(reason, true, "server", wait);
  return new DownloadFailure(reason, false, "server");
}
