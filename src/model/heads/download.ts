import { open, rename, rm } from "node:fs/promises";
import { HeadsError } from "./errors.js";
import type { DownloadProgress } from "../resolve.js";

/**
 * Longest wait for a connection, the response headers, or the next chunk of a body (ms): without it
 * a host that drops packets would hold start-up for the OS's TCP timeout (minutes). Heads files are
 * small (2 MiB), so a healthy download never pauses this long.
 */
export const STALL_TIMEOUT_MS = 20_000;

export interface DownloadTarget {
  readonly url: string;
  /** Final path; the bytes go to a temporary file beside it, renamed when complete. */
  readonly file: string;
}

export interface DownloadOptions {
  /** Bytes of all the targets together, so that one bar covers them (the model's progress shape). */
  readonly onProgress?: (progress: DownloadProgress) => void;
  readonly signal?: AbortSignal;
  readonly stallTimeoutMs?: number;
  /** Sent as a bearer token (HF_TOKEN) when not empty. */
  readonly token?: string;
}

/** One line for a failed fetch: undici's "fetch failed" hides the reason (ECONNREFUSED, ENOTFOUND) in `cause`. */
function describe(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const detail = cause?.code ?? cause?.message;
  return `${(error as Error).message}${detail ? ` (${detail})` : ""}`;
}

/** Waits for every task (so that none still writes when the caller cleans up), then throws the first failure. */
async function settle<T>(tasks: readonly Promise<T>[], fail: (message: string) => void): Promise<T[]> {
  for (const task of tasks) task.catch((error: unknown) => fail((error as Error).message));
  const results = await Promise.allSettled(tasks);
  const rejected = results.find((result): result is PromiseRejectedResult => result.status === "rejected");
  if (rejected) throw rejected.reason;
  return results.map((result) => (result as PromiseFulfilledResult<T>).value);
}

/**
 * Downloads the targets side by side with fetch (which follows Hugging Face's redirects), sending
 * `token` (HF_TOKEN) when not empty. All response headers arrive before any body is read, so the progress total is
 * known from the first report. Any failure aborts the rest and throws a one-line HeadsError naming
 * the first cause; no temporary file is left behind.
 */
export async function downloadFiles(targets: readonly DownloadTarget[], options: DownloadOptions = {}): Promise<void> {
  const stallMs = options.stallTimeoutMs ?? STALL_TIMEOUT_MS;
  const controller = new AbortController();
  let failure: string | undefined;
  const fail = (message: string): void => {
    failure ??= message;
    controller.abort();
  };
  const onAbort = () => fail("download cancelled");
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  const timers = targets.map(({ url }) => {
    let timer: NodeJS.Timeout | undefined;
    return {
      touch: () => {
        clearTimeout(timer);
        timer = setTimeout(() => fail(`could not download ${url}: no data for ${stallMs / 1000} s`), stallMs);
      },
      stop: () => clearTimeout(timer),
    };
  });
  const headers: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};
  const temporaries = targets.map(({ file }) => `${file}.${process.pid}.download`);
  const downloaded = targets.map(() => 0);
  const request = async (url: string, i: number): Promise<Response> => {
    timers[i].touch();
    try {
      const response = await fetch(url, { headers, signal: controller.signal });
      if (response.ok) return response;
      await response.body?.cancel();
      throw new HeadsError(`could not download ${url}: HTTP ${response.status} ${response.statusText}`.trim());
    } catch (error) {
      throw error instanceof HeadsError ? error : new HeadsError(failure ?? `could not download ${url}: ${describe(error)}`);
    } finally {
      timers[i].stop();
    }
  };
  const save = async (response: Response, i: number, report: () => void): Promise<void> => {
    const file = await open(temporaries[i], "w");
    try {
      timers[i].touch();
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        timers[i].touch();
        await file.write(chunk);
        downloaded[i] += chunk.length;
        report();
      }
    } catch (error) {
      throw new HeadsError(failure ?? `could not download ${targets[i].url}: ${describe(error)}`);
    } finally {
      timers[i].stop();
      await file.close();
    }
    const expected = response.headers.get("content-length");
    if (expected !== null && Number(expected) !== downloaded[i]) {
      throw new HeadsError(`could not download ${targets[i].url}: the connection closed after ${downloaded[i]} of ${expected} bytes`);
    }
    await rename(temporaries[i], targets[i].file);
  };
  try {
    const responses = await settle(targets.map(({ url }, i) => request(url, i)), fail);
    const total = responses.reduce((sum, response) => sum + Number(response.headers.get("content-length") ?? 0), 0);
    const report = () => options.onProgress?.({ downloadedBytes: downloaded.reduce((a, b) => a + b, 0), totalBytes: total });
    await settle(responses.map((response, i) => save(response, i, report)), fail);
  } catch (error) {
    throw new HeadsError(failure ?? (error as Error).message);
  } finally {
    for (const timer of timers) timer.stop();
    options.signal?.removeEventListener("abort", onAbort);
    await Promise.all(temporaries.map((temporary) => rm(temporary, { force: true })));
  }
}
