import http from "node:http";

/** Workloads of exact token counts: token-id inputs of ordinary vocabulary entries (no specials). */

export function syntheticTokens(length: number, seed: number): number[] {
  let state = seed * 2654435761 + 1;
  return Array.from({ length }, () => {
    state = (state * 1103515245 + 12345) >>> 0;
    return 1000 + (state % 200_000);
  });
}

/** A whole `length`-token input for the addon itself (no server adds the specials): <s>, ordinary ids, </s>. */
export function addonInput(info: { bosToken: number; eosToken: number; nVocab: number }, length: number): number[] {
  const body = Array.from({ length: length - 2 }, (_, i) => 10 + (((i + 1) * 7919) % (info.nVocab - 20)));
  return [info.bosToken, ...body, info.eosToken];
}

/**
 * POST a JSON body over node:http rather than fetch: undici gives up on a response whose headers take
 * over 5 minutes, and one long input on the slower engine takes about that.
 */
export function postJson(url: string, payload: object): Promise<Buffer> {
  const body = JSON.stringify(payload);
  return new Promise((resolve, reject) => {
    const request = http.request(url, {
      method: "POST",
      headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
    }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => {
        const text = Buffer.concat(chunks);
        if (response.statusCode !== 200) reject(new Error(`HTTP ${response.statusCode}: ${text.toString().slice(0, 500)}`));
        else resolve(text);
      });
      response.on("error", reject);
    });
    request.on("error", reject);
    request.end(body);
  });
}

function postEmbeddings(url: string, inputs: number[][], encoding: "float" | "base64"): Promise<Buffer> {
  return postJson(`${url}/v1/embeddings`, { input: inputs, encoding_format: encoding });
}

/** Embeds and discards the answer (base64, the cheapest to produce and read). */
export async function embedTokens(url: string, inputs: number[][]): Promise<void> {
  await postEmbeddings(url, inputs, "base64");
}

export async function embedTokensFloat(url: string, inputs: number[][]): Promise<number[][]> {
  const body = JSON.parse((await postEmbeddings(url, inputs, "float")).toString()) as { data: { embedding: number[] }[] };
  return body.data.map((d) => d.embedding);
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** The median of values in any order (the caller's array is not reordered). */
export function median(values: readonly number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/** Tokens per second for `requests` requests of `perRequest` inputs of `tokens` ids, `inFlight` at a time. */
export async function throughput(url: string, options: { requests: number; perRequest: number; tokens: number; inFlight: number }): Promise<number> {
  // Ids given without <s>/</s>: the server adds two tokens to each input.
  const tokensPerRequest = options.perRequest * (options.tokens + 2);
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < options.requests) {
      const id = next++;
      await embedTokens(url, Array.from({ length: options.perRequest }, (_, i) => syntheticTokens(options.tokens, id * 1000 + i)));
    }
  };
  await Promise.all(Array.from({ length: options.inFlight }, worker));
  return (options.requests * tokensPerRequest) / ((performance.now() - started) / 1000);
}

/** Latencies (ms, sorted) of sequential single inputs. */
export async function latencies(url: string, options: { requests: number; tokens: number }): Promise<number[]> {
  const result: number[] = [];
  for (let i = 0; i < options.requests; i++) {
    const started = performance.now();
    await embedTokens(url, [syntheticTokens(options.tokens, 7_000_000 + i)]);
    result.push(performance.now() - started);
  }
  return result.sort((a, b) => a - b);
}
