// A client that stops reading a large answer costs the server what it had to compute (the outputs, counted
// in MAX_OUTPUT_BYTES) and what its socket buffers, never the encoded answer: measured on the server's own
// process (VmRSS, VmHWM), with a bound the old whole-string answer (several times the outputs) would break.
import http from "node:http";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import t from "tap";
import { startServerProcess } from "../scripts/bench/server-process.js";
import { writeRandomHeads } from "../scripts/heads/random-heads.js";
import { TINY, testModel } from "./helpers/models.js";
import { nativeAddonOrSkip } from "./helpers/native.js";

const MiB = 1024 * 1024;
const COLBERT_WIDTH = 1024;
const INPUTS = 8;
const IDS = 1000;
/** Rows per input: one per token after <s>, `</s>` included (the server adds both specials). */
const ROWS = IDS + 1;
const OUTPUT_BYTES = INPUTS * ROWS * COLBERT_WIDTH * 4;
/** While the reader waits: Node's heap, glibc's arenas and the socket's buffers. */
const SLACK_WAITING = 48 * MiB;
/**
 * Over the whole answer: the same plus the encoded text's garbage, which V8 collects lazily (peaks of 80-112 MiB
 * above the outputs measured). The answer built whole, as before streaming, rose 1,249 MiB on this test.
 */
const SLACK_PEAK = 128 * MiB;

if (nativeAddonOrSkip(t)) {
  const modelPath = await testModel(TINY);
  const headsDir = await mkdtemp(path.join(os.tmpdir(), "bge-m3-slow-reader-"));
  t.teardown(() => rm(headsDir, { recursive: true, force: true }));
  await writeRandomHeads(headsDir, { width: TINY.width!, colbertWidth: COLBERT_WIDTH, dtype: "f32", seed: 9 });
  const server = await startServerProcess({ EMBEDDING_MODEL: modelPath, M3_HEADS: headsDir, ENGINE: "native", MAX_OUTPUT_BYTES: String(128 * MiB) });
  t.teardown(() => server.stop());
  const { hostname, port } = new URL(server.url);
  const ids = (seed: number, length = IDS) => Array.from({ length }, (_, i) => 1000 + ((seed * 7919 + i * 104729) % 200_000));
  const post = (payload: unknown) =>
    new Promise<http.IncomingMessage>((resolve, reject) => {
      const request = http.request({ host: hostname, port, method: "POST", path: "/v1/embeddings", headers: { "content-type": "application/json" } }, resolve);
      request.on("error", reject);
      request.end(JSON.stringify(payload));
    });
  const readAll = (response: http.IncomingMessage) =>
    new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk)).on("end", () => resolve(Buffer.concat(chunks).toString())).on("error", reject);
      response.resume();
    });
  /** Bytes the server process has written to sockets and files so far. */
  const bytesWritten = () => Number(/^wchar:\s+(\d+)/m.exec(readFileSync(`/proc/${server.pid}/io`, "utf8"))![1]);

  t.test("a reader that stops mid-answer holds the outputs and the socket's buffers, not the answer", async (t) => {
    const input = Array.from({ length: INPUTS }, (_, i) => ids(i));
    // the same shapes once, so the engine's buffers and Node's heap are as large as they get before measuring
    await readAll(await post({ input, return_colbert_vecs: true, encoding_format: "base64" }));
    const rest = server.rssBytes();
    server.resetPeak();

    const response = await post({ input, return_colbert_vecs: true });
    t.equal(response.statusCode, 200);
    const first = await new Promise<Buffer>((resolve) => response.once("data", resolve));
    response.pause();
    // the server writes until the socket's buffers are full, then waits: less than one 64 KiB chunk written
    // over a second (the event loop's own eventfd writes, 8 bytes each, go on)
    const written = [bytesWritten()];
    while (written.length <= 10 || written.at(-1)! - written.at(-11)! >= 64 * 1024) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      written.push(bytesWritten());
    }
    const paused = server.rssBytes() - rest;
    t.ok(paused <= OUTPUT_BYTES + SLACK_WAITING, `RSS rose ${(paused / MiB).toFixed(1)} MiB while the reader waited (outputs ${(OUTPUT_BYTES / MiB).toFixed(1)} MiB)`);

    const text = first.toString() + (await readAll(response));
    const answer = JSON.parse(text) as { data: { colbert_embedding: number[][] }[] };
    t.same(answer.data.map((item) => item.colbert_embedding.length), Array(INPUTS).fill(ROWS), "every row arrived");
    const row = answer.data[INPUTS - 1].colbert_embedding[ROWS - 1];
    t.ok(Math.abs(Math.hypot(...row) - 1) < 1e-5, "rows are unit vectors");
    const peak = server.peakRssBytes() - rest;
    t.ok(peak <= OUTPUT_BYTES + SLACK_PEAK, `peak RSS rose ${(peak / MiB).toFixed(1)} MiB for a ${(text.length / MiB).toFixed(0)} MiB answer`);
  });
}
