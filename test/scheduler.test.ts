import t from "tap";
import {
  BatchScheduler,
  NonFiniteVectorError,
  QueueFullError,
  RequestAbortedError,
  RequestTooLargeError,
  SchedulerClosedError,
  SchedulerTimeoutError,
} from "../src/engine/scheduler.js";
import type { BatchStats, Embedder } from "../src/engine/types.js";

/**
 * A recording engine: each vector is [length, first id, last id], so every caller can check it got
 * the vector of its own sequence. It only exercises the queue; the real engines have their own tests.
 */
function recordingEmbedder(limits = { maxBatchTokens: 100, maxBatchSequences: 4 }, delayMs = 5) {
  const batches: number[][][] = [];
  let release: (() => void) | undefined;
  const embedder: Embedder & { batches: typeof batches; hold(): void; release(): void } = {
    engine: "node-llama-cpp",
    device: "cpu",
    info: { nVocab: 1000, dimensions: 3, contextSize: 100, bosToken: 0, eosToken: 2 },
    vocabulary: { texts: (ids) => Array.from(ids, String), special: new Set([0, 2]) },
    limits,
    batches,
    async tokenize() {
      throw new Error("not used");
    },
    async embedBatch(sequences) {
      batches.push(sequences.map((s) => Array.from(s)));
      if (release === undefined) await new Promise((r) => setTimeout(r, delayMs));
      else await new Promise<void>((r) => (release = r));
      const out = new Float32Array(sequences.length * 3);
      sequences.forEach((s, i) => out.set([s.length, s[0], s[s.length - 1]], i * 3));
      return out;
    },
    async dispose() {},
    hold() {
      release = () => {};
    },
    release() {
      const r = release;
      release = undefined;
      r?.();
    },
  };
  return embedder;
}

const seq = (length: number, first: number) => Uint32Array.from({ length }, (_, i) => (i === 0 ? first : i === length - 1 ? first + 1 : 5));
const options = { maxBatchTokens: 100, maxBatchSequences: 4, maxQueueInputs: 100, maxQueueTokens: 10_000 };

t.test("every vector goes back to its request and position", async (t) => {
  const embedder = recordingEmbedder();
  const scheduler = new BatchScheduler(embedder, options);
  const requests = Array.from({ length: 6 }, (_, r) =>
    scheduler.submit(Array.from({ length: 3 }, (_, i) => seq(3 + i, 10 * r + i))),
  );
  const results = await Promise.all(requests);
  results.forEach((vectors, r) =>
    vectors.forEach((vector, i) => t.same(Array.from(vector.pooled), [3 + i, 10 * r + i, 10 * r + i + 1])),
  );
  t.ok(embedder.batches.length < 18, "inputs were batched");
  t.ok(embedder.batches.every((b) => b.length <= 4), "sequence cap holds");
});

t.test("batches respect the token budget, in arrival order; a long input runs alone", async (t) => {
  const embedder = recordingEmbedder({ maxBatchTokens: 1000, maxBatchSequences: 64 });
  const stats: BatchStats[] = [];
  const scheduler = new BatchScheduler(embedder, { ...options, maxBatchTokens: 50, maxBatchSequences: 64 }, { onBatch: (s) => stats.push(s) });
  embedder.hold();
  const first = scheduler.submit([seq(10, 1)]);
  const second = scheduler.submit([seq(20, 100), seq(20, 200), seq(90, 300), seq(5, 400)]);
  embedder.release();
  await first;
  for (let i = 0; i < 3; i++) await new Promise((r) => setTimeout(r, 20));
  await second;
  const firstIds = embedder.batches.map((b) => b.map((s) => s[0]));
  t.same(firstIds, [[1], [100, 200], [300], [400]]);
  t.same(stats.map((s) => s.tokens), [10, 40, 90, 5]);
});

t.test("a full queue refuses at once and keeps what it accepted", async (t) => {
  const embedder = recordingEmbedder();
  const scheduler = new BatchScheduler(embedder, { ...options, maxQueueInputs: 5 });
  embedder.hold();
  const running = scheduler.submit([seq(3, 1)]);
  await new Promise((r) => setImmediate(r));
  const queued = scheduler.submit([seq(3, 2), seq(3, 3), seq(3, 4)]);
  await t.rejects(scheduler.submit([seq(3, 5), seq(3, 6), seq(3, 7)]), QueueFullError);
  embedder.release();
  await running;
  const vectors = await queued;
  t.same(vectors.map((v) => v.pooled[1]), [2, 3, 4]);
});

t.test("the token bound refuses too", async (t) => {
  const embedder = recordingEmbedder();
  const scheduler = new BatchScheduler(embedder, { ...options, maxQueueTokens: 10 });
  embedder.hold();
  const running = scheduler.submit([seq(6, 1)]);
  await new Promise((r) => setImmediate(r));
  const queued = scheduler.submit([seq(6, 2)]);
  await t.rejects(scheduler.submit([seq(6, 3)]), QueueFullError);
  embedder.release();
  await Promise.all([running, queued]);
});

t.test("a request larger than the queue itself is refused as never fitting, not as full", async (t) => {
  const scheduler = new BatchScheduler(recordingEmbedder(), { ...options, maxQueueInputs: 2, maxQueueTokens: 10 });
  await t.rejects(scheduler.submit([seq(6, 1), seq(6, 2)]), { name: "RequestTooLargeError", limit: "tokens", requested: 12, allowed: 10 });
  await t.rejects(scheduler.submit([seq(2, 1), seq(2, 2), seq(2, 3)]), RequestTooLargeError);
  t.same(Array.from((await scheduler.submit([seq(6, 4)]))[0].pooled), [6, 4, 5], "the empty queue takes what fits");
});

t.test("admission reserves room before the exact sequences exist and gives back what they do not need", async (t) => {
  const embedder = recordingEmbedder();
  const scheduler = new BatchScheduler(embedder, { ...options, maxQueueInputs: 4, maxQueueTokens: 20 });
  embedder.hold();
  const running = scheduler.submit([seq(3, 1)]);
  await new Promise((r) => setImmediate(r));
  const admission = scheduler.admit(2, 18);
  t.throws(() => scheduler.admit(1, 3), QueueFullError, "the reservation holds the room");
  const received: number[] = [];
  const submitted = admission.submit([seq(3, 10), seq(3, 20)], (_index, outputs) => received.push(outputs.pooled[1]));
  const next = scheduler.admit(2, 14);
  t.throws(() => scheduler.admit(1, 1), QueueFullError);
  next.release();
  next.release();
  scheduler.admit(2, 14).release();
  embedder.release();
  await running;
  await submitted;
  t.same(received, [10, 20]);
});

t.test("a running batch whose every request is gone is stopped; one still wanted finishes", async (t) => {
  const embedder = recordingEmbedder();
  const signals: AbortSignal[] = [];
  const original = embedder.embedBatch.bind(embedder);
  embedder.embedBatch = (sequences, signal) => {
    if (signal) signals.push(signal);
    return original(sequences, signal);
  };
  const cancelled: [number, string][] = [];
  const scheduler = new BatchScheduler(embedder, options, { onCancelled: (n, stage) => cancelled.push([n, stage]) });
  embedder.hold();
  const blocker = scheduler.submit([seq(3, 9)]);
  await new Promise((r) => setImmediate(r));
  const gone = new AbortController();
  const first = scheduler.submit([seq(3, 1)], { signal: gone.signal });
  const second = scheduler.submit([seq(3, 2)]);
  embedder.release();
  embedder.hold();
  await blocker;
  await new Promise((r) => setImmediate(r));
  t.same(embedder.batches[1].map((s) => s[0]), [1, 2], "both inputs run in one batch");
  gone.abort();
  await t.rejects(first, RequestAbortedError);
  t.notOk(signals[1].aborted, "half the batch is still wanted: it runs on");
  embedder.release();
  t.same(Array.from((await second)[0].pooled), [3, 2, 3]);

  embedder.hold();
  const alone = new AbortController();
  const third = scheduler.submit([seq(3, 3)], { signal: alone.signal });
  await new Promise((r) => setImmediate(r));
  alone.abort();
  await t.rejects(third, RequestAbortedError);
  t.ok(signals[2].aborted, "nobody wants the batch: its signal aborts");
  t.same(cancelled, [[1, "running"]]);
  embedder.release();
});

t.test("a non-finite vector fails its own request only", async (t) => {
  const embedder = recordingEmbedder();
  const original = embedder.embedBatch.bind(embedder);
  embedder.embedBatch = async (sequences, signal) => {
    const out = await original(sequences, signal);
    sequences.forEach((s, i) => s[0] === 66 && out.set([Number.NaN], i * 3));
    return out;
  };
  let nonFinite = 0;
  const scheduler = new BatchScheduler(embedder, options, { onNonFinite: () => nonFinite++ });
  // the next two requests queue behind a running batch, then share one
  embedder.hold();
  const blocker = scheduler.submit([seq(3, 9)]);
  const settled = Promise.allSettled([scheduler.submit([seq(3, 1), seq(3, 66)]), scheduler.submit([seq(3, 7)])]);
  embedder.release();
  await blocker;
  const [poisoned, healthy] = await settled;
  t.match(poisoned, { status: "rejected", reason: { name: "NonFiniteVectorError", index: 1 } });
  t.ok((poisoned as PromiseRejectedResult).reason instanceof NonFiniteVectorError);
  t.match(healthy, { status: "fulfilled" });
  t.same(embedder.batches.map((batch) => batch.length), [1, 3], "all three inputs shared a batch");
  t.equal(nonFinite, 1);
});

t.test("a cancelled request's queued inputs never reach the engine", async (t) => {
  const embedder = recordingEmbedder();
  const scheduler = new BatchScheduler(embedder, options);
  embedder.hold();
  const running = scheduler.submit([seq(3, 1)]);
  await new Promise((r) => setImmediate(r));
  const controller = new AbortController();
  const cancelled = scheduler.submit([seq(3, 50), seq(3, 60)], { signal: controller.signal });
  const kept = scheduler.submit([seq(3, 70)]);
  t.equal(scheduler.queuedInputs, 3);
  controller.abort();
  await t.rejects(cancelled, RequestAbortedError);
  t.equal(scheduler.queuedInputs, 1);
  embedder.release();
  await running;
  t.same(Array.from((await kept)[0].pooled), [3, 70, 71]);
  t.notOk(embedder.batches.flat().some((s) => s[0] === 50 || s[0] === 60));
});

t.test("a request that waits too long times out", async (t) => {
  const embedder = recordingEmbedder();
  const scheduler = new BatchScheduler(embedder, options);
  embedder.hold();
  const running = scheduler.submit([seq(3, 1)]);
  await t.rejects(scheduler.submit([seq(3, 2)], { timeoutMs: 30 }), SchedulerTimeoutError);
  embedder.release();
  await running;
});

t.test("engine errors reach every request of the batch; the queue goes on", async (t) => {
  const embedder = recordingEmbedder();
  const original = embedder.embedBatch.bind(embedder);
  let failNext = true;
  embedder.embedBatch = async (sequences) => {
    if (failNext) {
      failNext = false;
      throw new Error("engine broke");
    }
    return original(sequences);
  };
  const scheduler = new BatchScheduler(embedder, options);
  await t.rejects(scheduler.submit([seq(3, 1)]), /engine broke/);
  t.same(Array.from((await scheduler.submit([seq(3, 9)]))[0].pooled), [3, 9, 10]);
});

t.test("close() finishes accepted work and refuses new work", async (t) => {
  const embedder = recordingEmbedder();
  const scheduler = new BatchScheduler(embedder, options);
  const accepted = scheduler.submit([seq(3, 1), seq(3, 2)]);
  await scheduler.close();
  t.equal((await accepted).length, 2);
  await t.rejects(scheduler.submit([seq(3, 3)]), SchedulerClosedError);
});

t.test("a submission's outputs reach its sink in input order, batch by batch, whatever shares the batches", async (t) => {
  // budget 10 tokens, 4 sequences: the 12 inputs of A and B interleave over several batches
  const embedder = recordingEmbedder({ maxBatchTokens: 10, maxBatchSequences: 4 });
  const scheduler = new BatchScheduler(embedder, { ...options, maxBatchTokens: 10 });
  const order: string[] = [];
  const batchesSeen: number[] = [];
  const submitTo = (name: string, firsts: number[]) =>
    scheduler.admit(firsts.length, 100).submit(
      firsts.map((first, i) => seq(3 + (i % 3), first)),
      (index, outputs) => {
        order.push(`${name}${index}:${outputs.pooled[1]}`);
        batchesSeen.push(embedder.batches.length);
      },
    );
  await Promise.all([submitTo("A", [10, 20, 30, 40, 50, 60]), submitTo("B", [70, 80, 90, 100, 110, 120])]);
  t.same(
    order.filter((entry) => entry.startsWith("A")),
    ["A0:10", "A1:20", "A2:30", "A3:40", "A4:50", "A5:60"],
  );
  t.same(
    order.filter((entry) => entry.startsWith("B")),
    ["B0:70", "B1:80", "B2:90", "B3:100", "B4:110", "B5:120"],
  );
  t.ok(embedder.batches.length > 2, `the inputs ran in ${embedder.batches.length} batches`);
  t.ok(batchesSeen[0] < batchesSeen.at(-1)!, "outputs were handed over as their batches finished, not all at the end");
});

t.test("a sink that throws fails its own submission only", async (t) => {
  const embedder = recordingEmbedder();
  const scheduler = new BatchScheduler(embedder, options);
  const failing = scheduler.admit(2, 10).submit([seq(3, 1), seq(3, 2)], () => {
    throw new Error("sink broke");
  });
  const healthy = scheduler.submit([seq(3, 7)]);
  await t.rejects(failing, /sink broke/);
  t.same(Array.from((await healthy)[0].pooled), [3, 7, 8]);
});
