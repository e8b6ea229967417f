import type { DownloadEvent, DownloadProgress } from "./download/download.js";
import { downloadMessage, percentOf } from "./download/messages.js";

const INTERVAL_MS = 5000;

/**
 * Download progress for logs (no terminal for a progress bar): at most one report per interval, and
 * always the last one.
 */
export function periodicProgress<P extends DownloadProgress>(report: (percent: string, progress: P) => void): (progress: P) => void {
  let lastReported = 0;
  let finished = false;
  return (progress) => {
    const done = progress.totalBytes > 0 && progress.downloadedBytes >= progress.totalBytes;
    const now = Date.now();
    if (finished || (now - lastReported < INTERVAL_MS && !done)) return;
    lastReported = now;
    finished = done;
    report(percentOf(progress), progress);
  };
}

/**
 * Download events as lines for a log or a terminal: every start, retry and end, progress through
 * periodicProgress (per file). Shared by the server and `npm run fetch-model`.
 */
export function downloadLines(write: (event: DownloadEvent, line: string) => void): (event: DownloadEvent) => void {
  const progressOf = new Map<string, (event: Extract<DownloadEvent, { type: "progress" }>) => void>();
  return (event) => {
    if (event.type !== "progress") return write(event, downloadMessage(event));
    let report = progressOf.get(event.label);
    if (!report) progressOf.set(event.label, (report = periodicProgress((_percent, progress) => write(progress, downloadMessage(progress)))));
    report(event);
  };
}
