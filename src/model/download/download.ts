import type { IncomingMessage } from "node:http";
import { mkdir, open, readFile, rename, rm, stat, writeFile, type FileHandle } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { DownloadFailure, networkFailure, statusFailure, type Advice } from "./failure.js";
import { NO_PROXIES, proxyFor, proxyLabel, ProxySettingError, type ProxyEnvironment } from "./proxy.js";
import { get } from "./transport.js";

/** How downloads treat a slow or broken link and which proxy they take (DOWNLOAD_TIMEOUT_MS, DOWNLOAD_STALL_TIMEOUT_MS, HTTPS_PROXY...). */
export interface DownloadSettings {
  /** Give up after this long without a byte arriving, retries included (ms); 0 = keep trying. */
  readonly timeoutMs: number;
  /** An attempt that gets no data for this long (connecting, waiting for headers, between chunks) is dropped and retried (ms). */
  readonly stallTimeoutMs: number;
  readonly proxies: ProxyEnvironment;
}

export const DEFAULT_DOWNLOAD_SETTINGS: DownloadSettings = { timeoutMs: 300_000, stallTimeoutMs: 30_000, proxies: NO_PROXIES };

export interface DownloadSource {
  readonly url: string;
  /** The final path; the bytes go to `<file>.partial` first (kept for resuming), renamed when complete. */
  readonly file: string;
  /** What is downloaded, for messages: "model", "heads file sparse_linear.pt". */
  readonly label: string;
  /** The setting that named it (EMBEDDING_MODEL, M3_HEADS), for the advice on a 404. */
  readonly setting: string;
  /** How to do without the download, appended to the advice on network failures. */
  readonly elsewhere: string;
  /** HF_TOKEN: sent as a bearer token to `url`'s origin only, never to a host it redirects to. */
  readonly token?: string;
}

export interface DownloadProgress {
  readonly downloadedBytes: number;
  /** 0 when the server did not say. */
  readonly totalBytes: number;
}

export type DownloadEvent =
  | { readonly type: "start"; readonly label: string; readonly url: string; readonly file: string; readonly proxy?: string; readonly resumeFrom: number }
  | ({ readonly type: "progress"; readonly label: string } & DownloadProgress)
  | ({
      readonly type: "retry";
      readonly label: string;
      readonly attempt: number;
      readonly reason: string;
      readonly advice: string;
      readonly delayMs: number;
      /** DOWNLOAD_TIMEOUT_MS: how long without data before it gives up; 0 = never. */
      readonly timeoutMs: number;
    } & DownloadProgress)
  | { readonly type: "done"; readonly label: string; readonly file: string; readonly bytes: number; readonly seconds: number };

export interface DownloadOptions {
  readonly settings?: DownloadSettings;
  readonly onEvent?: (event: DownloadEvent) => void;
  readonly signal?: AbortSignal;
}

/** A download that will not succeed now: one line, the reason and what to do. */
export class DownloadError extends Error {
  override name = "DownloadError";
}

const MAX_REDIRECTS = 10;
const USER_AGENT = "bge-m3-embeddings";
/** First wait before retrying (ms), doubled per attempt up to the cap. */
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;

/** What is known about `<file>.partial`: its length, and the validator (ETag or Last-Modified) the server gave it. */
interface PartialFile {
  offset: number;
  validator: string;
  totalBytes: number | undefined;
}

function advice(kind: Advice, source: DownloadSource): string {
  const words: Record<Advice, string> = {
    dns: "check the host name (HF_ENDPOINT, or the URL) and this machine's DNS; if the way out is a proxy, set HTTPS_PROXY",
    network: "check the network and HF_ENDPOINT; if the way out is a proxy, set HTTPS_PROXY",
    proxy: "check HTTPS_PROXY, HTTP_PROXY and NO_PROXY",
    "proxy-credentials": "the proxy wants credentials: HTTPS_PROXY=http://user:password@host:port",
    access: "the repository is gated, private or does not exist: set HF_TOKEN to a token that can read it (for a gated model, accept its terms on the hub first)",
    missing: `the file is not there: check ${source.setting} (repository and file name) and HF_ENDPOINT`,
    tls: "behind a TLS-inspecting proxy, add its CA certificate with NODE_EXTRA_CA_CERTS=/path/to/ca.pem",
    stall: "the link is slow or broken (DOWNLOAD_STALL_TIMEOUT_MS is the longest pause allowed)",
    server: "the server failed; try again later, or use a mirror with HF_ENDPOINT",
    disk: `check that ${path.dirname(source.file)} (MODEL_DIR) is writable and has room`,
  };
  return kind === "disk" ? words.disk : `${words[kind]}; ${source.elsewhere}`;
}

/** A strong ETag, else Last-Modified: what If-Range may carry. Weak ETags cannot validate a range. */
function validatorOf(response: IncomingMessage): string {
  const etag = response.headers.etag;
  if (etag && !etag.startsWith("W/")) return etag;
  return response.headers["last-modified"] ?? "";
}

/** The partial file left by an interrupted download, when it can be resumed; otherwise it is removed. */
async function readPartial(partialFile: string, metaFile: string): Promise<PartialFile> {
  const [info, metaText] = await Promise.all([stat(partialFile).catch(() => undefined), readFile(metaFile, "utf8").catch(() => undefined)]);
  try {
    const meta = JSON.parse(metaText ?? "null") as { validator?: unknown; totalBytes?: unknown } | null;
    const totalBytes = typeof meta?.totalBytes === "number" ? meta.totalBytes : undefined;
    if (info?.isFile() && info.size > 0 && typeof meta?.validator === "string" && meta.validator && (totalBytes === undefined || info.size < totalBytes)) {
      return { offset: info.size, validator: meta.validator, totalBytes };
    }
  } catch {
    // an unreadable note: start over
  }
  await Promise.all([rm(partialFile, { force: true }), rm(metaFile, { force: true })]);
  return { offset: 0, validator: "", totalBytes: undefined };
}

/**
 * Aborts an attempt that gets no data for `stallMs`, or that runs into the deadline: `touch` on
 * every sign of progress.
 */
function watchdog(controller: AbortController, stallMs: number, deadline: () => number, host: () => string) {
  let timer: NodeJS.Timeout | undefined;
  const touch = () => {
    clearTimeout(timer);
    const waitMs = Math.max(0, Math.min(stallMs, deadline() - Date.now()));
    timer = setTimeout(() => {
      controller.abort(new DownloadFailure(`no data from ${host()} for ${(waitMs / 1000).toFixed(1)} s`, true, "stall"));
    }, waitMs);
  };
  return { touch, stop: () => clearTimeout(timer) };
}

/** proxyFor, with a proxy variable we cannot use as a failure no retry mends (a redirect may need the other variable). */
function proxyOf(url: URL, proxies: ProxyEnvironment): URL | undefined {
  try {
    return proxyFor(url, proxies);
  } catch (error) {
    throw error instanceof ProxySettingError ? new DownloadFailure(error.message, false, "proxy") : error;
  }
}

/** What an attempt tells the loop around it. */
interface AttemptHooks {
  readonly signal: AbortSignal;
  /** Each URL asked, the first and every redirect's. */
  readonly onHop: (url: URL) => void;
  /** Once the body starts (`data` false), then per chunk written. */
  readonly onProgress: (data: boolean) => void;
}

/** GET with redirects followed, asking for the bytes after `partial.offset` when there are any. */
async function request(source: DownloadSource, partial: PartialFile, proxies: ProxyEnvironment, { signal, onHop }: AttemptHooks): Promise<{ response: IncomingMessage; url: URL }> {
  let url = new URL(source.url);
  const origin = url.origin;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    onHop(url);
    const headers: Record<string, string> = { "user-agent": USER_AGENT, "accept-encoding": "identity" };
    if (source.token && url.origin === origin) headers.authorization = `Bearer ${source.token}`;
    if (partial.offset > 0) Object.assign(headers, { range: `bytes=${partial.offset}-`, "if-range": partial.validator });
    const response = await get({ url, headers, proxy: proxyOf(url, proxies), signal });
    const location = response.headers.location;
    if (![301, 302, 303, 307, 308].includes(response.statusCode ?? 0) || !location) return { response, url };
    response.resume();
    url = new URL(location, url);
  }
  throw new DownloadFailure(`${source.url} redirected more than ${MAX_REDIRECTS} times`, false, "server");
}

/** Where the body's bytes go: 206 continues the partial file, 200 starts it over. Throws for any other answer. */
async function startWriting(response: IncomingMessage, url: URL, partial: PartialFile, partialFile: string, metaFile: string): Promise<FileHandle> {
  const status = response.statusCode ?? 0;
  if (status === 206 && partial.offset > 0) {
    const range = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(response.headers["content-range"] ?? "");
    if (range && Number(range[1]) === partial.offset) {
      if (range[2] !== "*") partial.totalBytes = Number(range[2]);
      return open(partialFile, "r+");
    }
  }
  if (status === 200) {
    const length = response.headers["content-length"];
    Object.assign(partial, { offset: 0, validator: validatorOf(response), totalBytes: length === undefined ? undefined : Number(length) });
    await writeFile(metaFile, JSON.stringify({ validator: partial.validator, totalBytes: partial.totalBytes }));
    return open(partialFile, "w");
  }
  response.resume();
  if (status === 206 || status === 416) {
    // a range the server does not agree with: the next attempt fetches the whole file
    Object.assign(partial, { offset: 0, validator: "", totalBytes: undefined });
    throw new DownloadFailure(`${url.host} would not resume at the partial file's end (HTTP ${status}); starting over`, true, "server");
  }
  throw statusFailure(url.href, status, response.statusMessage ?? "", response.headers);
}

/** One attempt: request, then stream the body to the partial file, then rename it into place once complete. */
async function attempt(source: DownloadSource, partial: PartialFile, proxies: ProxyEnvironment, hooks: AttemptHooks): Promise<void> {
  const partialFile = `${source.file}.partial`;
  const metaFile = `${partialFile}.json`;
  const { response, url } = await request(source, partial, proxies, hooks);
  const file = await startWriting(response, url, partial, partialFile, metaFile);
  try {
    hooks.onProgress(false);
    try {
      for await (const chunk of response as AsyncIterable<Buffer>) {
        // positional writes: the file is always the first `offset` bytes, whatever stops us
        await file.write(chunk, 0, chunk.length, partial.offset);
        partial.offset += chunk.length;
        hooks.onProgress(true);
      }
    } catch (error) {
      throw networkFailure(error, { host: url.hostname, port: url.port || (url.protocol === "https:" ? "443" : "80") });
    }
    if (partial.totalBytes !== undefined && partial.offset !== partial.totalBytes) {
      throw new DownloadFailure(`${url.host} closed the connection after ${formatBytes(partial.offset)} of ${formatBytes(partial.totalBytes)}`, true, "network");
    }
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(partialFile, source.file);
  await rm(metaFile, { force: true });
}

/**
 * Downloads `source.url` to `source.file`: HTTPS_PROXY / HTTP_PROXY / NO_PROXY honoured, redirects
 * followed, an interrupted download resumed (HTTP Range, If-Range) from `<file>.partial`, transient
 * failures retried with backoff (one `retry` event each) until `timeoutMs` passes without a byte.
 * The final path appears only once the whole file is there. Throws a one-line DownloadError with the
 * reason and what to do.
 */
export async function downloadFile(source: DownloadSource, { settings = DEFAULT_DOWNLOAD_SETTINGS, onEvent = () => undefined, signal }: DownloadOptions = {}): Promise<void> {
  const fail = (kind: Advice, message: string) => new DownloadError(`${message}; ${advice(kind, source)}`);
  let proxy: URL | undefined;
  try {
    proxy = proxyFor(new URL(source.url), settings.proxies);
    await mkdir(path.dirname(source.file), { recursive: true });
  } catch (error) {
    if (error instanceof ProxySettingError) throw new DownloadError(`cannot download the ${source.label}: ${error.message}`);
    throw fail("disk", `cannot create ${path.dirname(source.file)}: ${(error as Error).message}`);
  }
  const partial = await readPartial(`${source.file}.partial`, `${source.file}.partial.json`);
  onEvent({ type: "start", label: source.label, url: source.url, file: source.file, proxy: proxy && proxyLabel(proxy), resumeFrom: partial.offset });
  const started = performance.now();
  let lastData = Date.now();
  const deadline = () => (settings.timeoutMs > 0 ? lastData + settings.timeoutMs : Infinity);
  let host = new URL(source.url).host; // of the URL asked last: a redirect's target stalls, not the hub
  for (let attemptNumber = 1; ; attemptNumber++) {
    const controller = new AbortController();
    const cancel = () => controller.abort();
    signal?.addEventListener("abort", cancel, { once: true });
    if (signal?.aborted) cancel();
    const dog = watchdog(controller, settings.stallTimeoutMs, deadline, () => host);
    dog.touch();
    try {
      await attempt(source, partial, settings.proxies, {
        signal: controller.signal,
        onHop: (url) => (host = url.host),
        onProgress: (data) => {
          if (data) lastData = Date.now();
          dog.touch();
          onEvent({ type: "progress", label: source.label, downloadedBytes: partial.offset, totalBytes: partial.totalBytes ?? 0 });
        },
      });
      onEvent({ type: "done", label: source.label, file: source.file, bytes: partial.offset, seconds: (performance.now() - started) / 1000 });
      return;
    } catch (error) {
      if (signal?.aborted) throw new DownloadError("download cancelled");
      const failure = controller.signal.aborted ? (controller.signal.reason as DownloadFailure) : networkFailure(error, { host });
      if (!failure.transient) throw fail(failure.advice, `could not download the ${source.label} from ${source.url}: ${failure.message}`);
      const delayMs = failure.retryAfterMs ?? Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (attemptNumber - 1));
      if (Date.now() + delayMs >= deadline()) {
        const seconds = ((Date.now() - lastData) / 1000).toFixed(1);
        throw fail(
          failure.advice,
          `gave up downloading the ${source.label} from ${source.url} after ${attemptNumber} attempt${attemptNumber > 1 ? "s" : ""} and ${seconds} s without data (DOWNLOAD_TIMEOUT_MS=${settings.timeoutMs}): ${failure.message}`,
        );
      }
      onEvent({
        type: "retry",
        label: source.label,
        attempt: attemptNumber,
        reason: failure.message,
        advice: advice(failure.advice, source),
        delayMs,
        timeoutMs: settings.timeoutMs,
        downloadedBytes: partial.offset,
        totalBytes: partial.totalBytes ?? 0,
      });
      await sleep(delayMs, undefined, { signal }).catch(() => undefined);
      if (signal?.aborted) throw new DownloadError("download cancelled");
    } finally {
      dog.stop();
      signal?.removeEventListener("abort", cancel);
      controller.abort(); // a failed attempt may leave a response unread: its socket goes now
    }
  }
}

/** Bytes for people: 605.1 MB, 2.1 kB. */
export function formatBytes(bytes: number): string {
  const units: [number, string][] = [[1e9, "GB"], [1e6, "MB"], [1e3, "kB"]];
  const [size, unit] = units.find(([size]) => bytes >= size) ?? [1, "B"];
  return unit === "B" ? `${bytes} B` : `${(bytes / size).toFixed(1)} ${unit}`;
}
