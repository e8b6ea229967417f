import { Readable } from "node:stream";
import type { FastifyReply } from "fastify";

/**
 * Answers written as they are encoded: a route gives the JSON text as a sequence of pieces (an item, a
 * ColBERT row) and the socket pulls them with backpressure, so an answer is never built whole and a slow
 * reader holds only what its socket buffers. The outputs the pieces are encoded from are computed (and
 * checked) before the first byte, so nothing can fail half-way through an answer.
 */

/** Pieces are joined into writes of about this many UTF-16 units (~64 KiB of ASCII). */
const CHUNK_UNITS = 64 * 1024;

function* chunked(pieces: Iterable<string>): Generator<string> {
  let parts: string[] = [];
  let length = 0;
  for (const piece of pieces) {
    parts.push(piece);
    length += piece.length;
    if (length >= CHUNK_UNITS) {
      yield parts.join("");
      parts = [];
      length = 0;
    }
  }
  if (parts.length > 0) yield parts.join("");
}

function* resumed(head: string, rest: Iterator<string>): Generator<string> {
  yield head;
  for (let next = rest.next(); !next.done; next = rest.next()) yield next.value;
}

/** Each chunk the socket pulls proves the client still reads: the timer restarts. */
function* watched(chunks: Iterable<string>, timer: NodeJS.Timeout): Generator<string> {
  for (const chunk of chunks) {
    timer.refresh();
    yield chunk;
  }
}

/** Calls `done` once the response is over: written, or its connection gone. */
export function whenResponseEnds(reply: FastifyReply, done: () => void): void {
  const response = reply.raw;
  if (response.destroyed || response.writableFinished) done();
  else response.once("close", done);
}

export interface SendOptions {
  /** Runs once the response is over, however it ends. */
  readonly done?: () => void;
  /**
   * A streamed answer whose client reads nothing for this long is abandoned (its connection closed), so
   * a reader that stopped cannot hold its answer's memory for ever; 0 = never.
   */
  readonly stalledAfterMs?: number;
}

/**
 * Sends the JSON text `pieces` make. An answer of one chunk goes out whole with a Content-Length, as any
 * small answer; a larger one is streamed (chunked transfer encoding).
 */
export function sendJsonPieces(reply: FastifyReply, pieces: Iterable<string>, options: SendOptions = {}): FastifyReply {
  const { done = () => {}, stalledAfterMs = 0 } = options;
  whenResponseEnds(reply, done);
  reply.type("application/json; charset=utf-8");
  const chunks = chunked(pieces)[Symbol.iterator]();
  const first = chunks.next();
  if (first.done) return reply.send("");
  const second = chunks.next();
  if (second.done) return reply.send(first.value);
  // strings stay strings down to the socket (written from V8's string, no Buffer per chunk waiting for the
  // GC), and at most two chunks wait for it
  let source = resumed(first.value, resumed(second.value, chunks));
  if (stalledAfterMs > 0) {
    const timer = setTimeout(() => reply.raw.destroy(), stalledAfterMs);
    whenResponseEnds(reply, () => clearTimeout(timer));
    source = watched(source, timer);
  }
  const stream = Readable.from(source, { objectMode: true, highWaterMark: 2 });
  return reply.send(stream);
}
