/**
 * Latency of several servers measured in the same minutes: all of them up at once, one ~20-token
 * request to each in turn per round (the order rotating), so a shared host's swings (10-25% over
 * minutes) fall on every server alike. Sequential runs of `latencies` minutes apart gave p50 ratios
 * between the same two servers from 0.5x to 0.96x; this gives each server's p50 and the median of
 * its per-round ratios to the first server.
 */
import { embedTokens, median, percentile, syntheticTokens } from "./workloads.js";

export interface PairedLatency {
  readonly p50Ms: number;
  readonly p95Ms: number;
  /** median over rounds of this server's time / the first server's time in the same round */
  readonly medianRatioToFirst: number;
}

export async function pairedLatencies(urls: readonly string[], options: { rounds: number; tokens: number }): Promise<PairedLatency[]> {
  const times = urls.map(() => [] as number[]);
  for (let round = -3; round < options.rounds; round++) { // three rounds of warm-up
    const ids = syntheticTokens(options.tokens, 7_000_000 + Math.max(round, 0));
    for (let k = 0; k < urls.length; k++) {
      const i = (k + Math.max(round, 0)) % urls.length;
      const started = performance.now();
      await embedTokens(urls[i], [ids]);
      if (round >= 0) times[i].push(performance.now() - started);
    }
  }
  return times.map((own) => {
    const sorted = [...own].sort((a, b) => a - b);
    return {
      p50Ms: percentile(sorted, 50),
      p95Ms: percentile(sorted, 95),
      medianRatioToFirst: median(own.map((t, r) => t / times[0][r])),
    };
  });
}
