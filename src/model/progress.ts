import type { DownloadProgress } from "./resolve.js";

const INTERVAL_MS = 5000;

/**
 * Download progress for logs (no terminal for a progress bar): at most one report per interval, and
 * always the last one.
 */
export function periodicProgress(report: (percent: string, progress: DownloadProgress) => void): (progress: DownloadProgress) => void {
  let lastReported = 0;
  let finished = false;
  return (progress) => {
    const done = progress.totalBytes > 0 && progress.downloadedBytes >= progress.totalBytes;
    const now = Date.now();
    if (finished || (now - lastReported < INTERVAL_MS && !done)) return;
    lastReported = now;
    finished = done;
    const percent = progress.totalBytes > 0 ? ((100 * progress.downloadedBytes) / progress.totalBytes).toFixed(1) : "?";
    report(percent, progress);
  };
}
