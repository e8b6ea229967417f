import { formatBytes, type DownloadEvent, type DownloadProgress } from "./download.js";

/** The percentage a progress event stands at, one decimal; "?" when the size is unknown. */
export function percentOf({ downloadedBytes, totalBytes }: DownloadProgress): string {
  return totalBytes > 0 ? ((100 * downloadedBytes) / totalBytes).toFixed(1) : "?";
}

/** The line a person reads for a download event: the server logs it, `npm run fetch-model` prints it. */
export function downloadMessage(event: DownloadEvent): string {
  switch (event.type) {
    case "start":
      return (
        `downloading the ${event.label} from ${event.url}${event.proxy ? ` through the proxy ${event.proxy}` : ""} to ${event.file}` +
        (event.resumeFrom > 0 ? ` (resuming after the ${formatBytes(event.resumeFrom)} already there)` : "")
      );
    case "progress":
      return `downloading ${event.label}: ${percentOf(event)}% (${formatBytes(event.downloadedBytes)}${event.totalBytes > 0 ? ` of ${formatBytes(event.totalBytes)}` : ""})`;
    case "retry":
      return (
        `${event.label} download attempt ${event.attempt} failed${event.downloadedBytes > 0 ? ` at ${percentOf(event)}%` : ""}: ${event.reason}; ` +
        `trying again in ${(event.delayMs / 1000).toFixed(1)} s, ` +
        (event.timeoutMs > 0 ? `giving up after ${event.timeoutMs / 1000} s without data (DOWNLOAD_TIMEOUT_MS)` : "with no deadline (DOWNLOAD_TIMEOUT_MS=0)") +
        `. If this persists: ${event.advice}`
      );
    case "done":
      return `downloaded the ${event.label}: ${event.file} (${formatBytes(event.bytes)} in ${event.seconds.toFixed(1)} s)`;
  }
}
