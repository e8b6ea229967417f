import type { RawConfig } from "./schema.js";

/**
 * Settings that are each valid but contradict one another: with them some request that passes every
 * per-request check could never be queued, and a client would be told to retry (503) forever.
 * Returns one line naming the settings, or undefined when they agree.
 */
export function contradiction(config: RawConfig): string | undefined {
  const { maxInputs, maxQueue, maxQueueTokens, maxRequestTokens, contextSize } = config;
  if (maxQueue < maxInputs) {
    return `MAX_QUEUE (${maxQueue}) is below MAX_INPUTS (${maxInputs}): a request with MAX_INPUTS inputs could never be queued; raise MAX_QUEUE or lower MAX_INPUTS`;
  }
  // the most tokens one admissible request may hold: the request cap, or every input at full length
  const largestRequest = Math.min(maxRequestTokens, maxInputs * contextSize);
  if (maxQueueTokens < largestRequest) {
    return (
      `MAX_QUEUE_TOKENS (${maxQueueTokens}) is below the ${largestRequest} tokens one admissible request may hold ` +
      `(min(MAX_REQUEST_TOKENS, MAX_INPUTS x CONTEXT_SIZE)); raise MAX_QUEUE_TOKENS or lower the others`
    );
  }
  if (maxRequestTokens < contextSize) {
    return `MAX_REQUEST_TOKENS (${maxRequestTokens}) is below CONTEXT_SIZE (${contextSize}): one full-length input could never be served; raise MAX_REQUEST_TOKENS or lower CONTEXT_SIZE`;
  }
  return undefined;
}
