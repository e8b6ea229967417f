// Tests of our native addon engine (native/, src/engine/native/). Skipped when the addon is not built (failed instead under BGE_M3_REQUIRE_NATIVE=1).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import t from "tap";
import { cpuFlags, expectedCpuKernels, type Int8Kernel, reportedCpuKernels } from "./helpers/cpu-kernels.js";
import { nativeAddonOrSkip } from "./helpers/native.js";
import type { NativeAddon, NativeError } from "../src/engine/native/addon-types.js";
import { loadNativeEmbedder } from "../src/engine/native/native-embedder.js";
import type { Embedder } from "../src/engine/types.js";
import { TINY, TINY_HEAD64, TINY_K, testModel } from "./helpers/models.js";
import { GGML_Q4_K, GgufReader } from "./helpers/gguf-reader.js";
import { cosine, loadReferenceModel, referenceEmbed, referenceEmbedding } from "./helpers/reference.js";
import { waitUntil } from "./support/app.js";

const addon = nativeAddonOrSkip(t);

function row(vectors: Float32Array, i: number, dim: number): Float32Array {
  return vectors.subarray(i * dim, (i + 1) * dim);
}

const TEXTS = [
  "The quick brown fox jumps over the lazy dog.",
  "a",
  "BGE-M3 est un modèle d'embeddings multilingue. 多语言嵌入模型。",
  "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. ".repeat(8),
  "",
];

if (addon) {
  const native: NativeAddon = addon;
  const modelPath = await testModel(TINY);
  const CONTEXT = 8192;
  const threads = Math.min(2, os.availableParallelism());
  /** A second engine on another test file, with a short context. */
  const loadSmallEngine = (path: string) => loadNativeEmbedder({
    modelPath: path, device: "cpu", threads, contextSize: 512, maxBatchTokens: 512, maxBatchSequences: 8,
  });

  let engine: Embedder;
  t.before(async () => {
    engine = await loadNativeEmbedder({
      modelPath,
      device: "cpu",
      threads,
      contextSize: CONTEXT,
      maxBatchTokens: 4096, // below contextSize: the engine must raise it so one full input fits
      maxBatchSequences: 16,
    });
  });
  t.teardown(async () => {
    await engine?.dispose();
  });

  t.test("engine shape", async (t) => {
    t.equal(engine.engine, "native");
    t.equal(engine.device, "cpu");
    t.equal(engine.info.contextSize, CONTEXT);
    t.equal(engine.info.dimensions, 64);
    t.equal(engine.info.nVocab, 250002);
    t.ok(engine.limits.maxBatchTokens >= CONTEXT, "a whole contextSize input fits one batch");
    t.equal(engine.limits.maxBatchSequences, 16);
    const tokens = await engine.tokenize(TEXTS);
    t.equal(tokens.length, TEXTS.length);
    for (const seq of tokens) {
      t.ok(seq instanceof Uint32Array);
      t.equal(seq[0], engine.info.bosToken, "starts with <s>");
      t.equal(seq[seq.length - 1], engine.info.eosToken, "ends with </s>");
    }
    t.same(Array.from(tokens[4]), [engine.info.bosToken, engine.info.eosToken], "empty text is <s></s>");
  });

  t.test("a mixed batch gives each sequence's vector alone", async (t) => {
    const tokens = await engine.tokenize(TEXTS);
    const dim = engine.info.dimensions;
    const batch = await engine.embedBatch(tokens);
    t.ok(batch instanceof Float32Array);
    t.equal(batch.length, tokens.length * dim);
    for (let i = 0; i < tokens.length; i++) {
      const alone = await engine.embedBatch([tokens[i]]);
      const c = cosine(row(batch, i, dim), alone);
      t.ok(c >= 0.9999, `sequence ${i} (${tokens[i].length} tokens): cosine ${c}`);
    }
    // different inputs give different vectors (the batch is not one vector repeated)
    t.ok(cosine(row(batch, 0, dim), row(batch, 3, dim)) < 0.999);
  });

  t.test("vectors match node-llama-cpp's embedding context", async (t) => {
    const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
    let llama;
    try {
      llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, progressLogs: false });
    } catch (error) {
      t.plan(0, `node-llama-cpp's prebuilt binary is not usable here: ${(error as Error).message}`);
      return;
    }
    const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
    const contextSize = 1024;
    const context = await model.createEmbeddingContext({ contextSize, batchSize: contextSize, threads });
    try {
      const ours = await engine.tokenize(TEXTS);
      const dim = engine.info.dimensions;
      const vectors = await engine.embedBatch(ours);
      for (let i = 0; i < TEXTS.length; i++) {
        const theirs = [engine.info.bosToken, ...model.tokenize(TEXTS[i], false), engine.info.eosToken];
        t.same(Array.from(ours[i]), theirs, `text ${i}: same token ids`);
        const embedding = await context.getEmbeddingFor(theirs as never);
        const c = cosine(row(vectors, i, dim), embedding.vector);
        t.ok(c >= 0.9999, `text ${i}: cosine ${c}`);
      }
    } finally {
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    }
  });

  t.test("vectors match the float64 reference forward pass", async (t) => {
    const tokens = await engine.tokenize(TEXTS.slice(0, 4));
    const dim = engine.info.dimensions;
    const vectors = await engine.embedBatch(tokens);
    for (let i = 0; i < tokens.length; i++) {
      const reference = referenceEmbed(modelPath, Array.from(tokens[i]));
      const c = cosine(row(vectors, i, dim), reference);
      t.ok(c >= 0.9999, `sequence ${i}: cosine ${c}`);
    }
  });

  // With F32 weights nothing but F32 rounding is left, once the FFN's GELU is the F32 formula (patch 0010,
  // native/kernels/gelu_f32.h, on x86 and aarch64) rather than ggml's F16 table: 1 - cosine was 2-3e-8 here
  // with the table, 2-3e-14 without. Head size 64, so attention takes our F32 kernel on every ISA.
  t.test("an F32 model's vectors are F32-exact: the GELU is not ggml's F16 table", async (t) => {
    if (!["x64", "arm64"].includes(process.arch)) {
      t.plan(0, `patch 0010's vector GELU is x86 and aarch64 only, this is ${process.arch}`);
      return;
    }
    const head64Path = await testModel(TINY_HEAD64);
    const head64 = await loadSmallEngine(head64Path);
    try {
      const tokens = await head64.tokenize(TEXTS.slice(0, 4));
      const dim = head64.info.dimensions;
      const vectors = await head64.embedBatch(tokens);
      for (let i = 0; i < tokens.length; i++) {
        const gap = 1 - cosine(row(vectors, i, dim), referenceEmbed(head64Path, Array.from(tokens[i])));
        t.ok(gap <= 1e-10, `sequence ${i} (${tokens[i].length} tokens): 1 - cosine ${gap.toExponential(2)}`);
      }
    } finally {
      await head64.dispose();
    }
  });

  // The kernels this build must have on this CPU (from /proc/cpuinfo and the NATIVE_CPU flavour, not from what
  // the addon says), and what its CPU backend reports: an AVX2 build that lost the int16 attention path, or a
  // native build on an AVX-VNNI host that fell back to the AVX2 tile, fails here.
  const flags = cpuFlags();
  const expected = expectedCpuKernels(native, flags);
  const reported = reportedCpuKernels(native);
  t.test(`the kernels the ${native.build.cpu} build has on this CPU`, { skip: expected ? false : "needs Linux on x86" }, async (t) => {
    t.equal(reported.int8 ?? "ggml's", expected?.int8 ?? "ggml's", `int8 weight products (${native.systemInfo()})`);
    t.equal(reported.attention ?? "f32 only", expected?.attention ?? "f32 only", "attention products besides F32");
  });

  // Q8_0, Q6_K and Q4_K products run in our int8 kernels (native/kernels/, patch 0005): AVX512-VNNI, AVX-VNNI or
  // AVX2 tiles, whichever the CPU backend was compiled for (it reports it as BGE_M3_INT8), ggml's own kernels
  // elsewhere; each is tested where a build has it (on an AVX-512 host NATIVE_CPU=avx-vnni and avx2 build the
  // others). Against the reference on the file's own dequantised weights only the activations' 8-bit
  // rounding is left (node-llama-cpp measured 0.99993..0.99998 on these files); a wrong scale, group or
  // zero point costs far more. The kernels take a batch's tokens 4 rows at a time and the rest one row
  // at a time: the batch of 350 tokens ends with 2 such rows, the 3-, 6- and 5-token inputs alone with 3,
  // 2 and 1; the 1,500-token one spans several of the kernels' L2-sized groups of rows (768 rows of 256
  // activations).
  const kernelFlags: Record<Int8Kernel, string[]> = {
    "avx512-vnni": ["avx512f", "avx512_vnni"], "avx-vnni": ["avx2", "fma", "f16c", "avx_vnni"], avx2: ["avx2", "fma", "f16c"],
  };
  const skipKernel = (kernel: Int8Kernel | undefined): string | false => {
    if (reported.int8 === kernel) return false;
    const lacks = kernel ? kernelFlags[kernel].filter((flag) => !flags.has(flag)) : [];
    if (lacks.length > 0) return `this CPU lacks ${lacks.join(", ")}`;
    return `this build's int8 kernel is ${reported.int8 ?? "ggml's"}` +
      (kernel === "avx-vnni" || kernel === "avx2" ? ` (NATIVE_CPU=${kernel} builds the ${kernel} one)` : "");
  };
  for (const kernel of ["avx512-vnni", "avx-vnni", "avx2", undefined] as const) {
    for (const fileType of ["q8_0", "q4_k_m"] as const) {
      t.test(`${fileType} weights match the reference on the file's own weights (int8 kernel: ${kernel ?? "ggml's"})`, { skip: skipKernel(kernel) }, async (t) => {
        const quantPath = await testModel({ ...TINY_K, fileType });
        const quantEngine = await loadNativeEmbedder({
          modelPath: quantPath, device: "cpu", threads, contextSize: 2048, maxBatchTokens: 2048, maxBatchSequences: 8,
        });
        try {
          const { bosToken, eosToken, nVocab, dimensions } = quantEngine.info;
          let seed = 11;
          const ids = (n: number) => Uint32Array.from([bosToken, ...Array.from({ length: n - 2 }, () => {
            seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
            return 5 + (seed >>> 8) % (nVocab - 6);
          }), eosToken]);
          const batch = [ids(2), ids(5), ids(40), ids(303)];
          const alone = [ids(3), ids(6), ids(5)];
          const long = ids(1500);
          const vectors = await quantEngine.embedBatch(batch);
          const singles: Float32Array[] = [];
          for (const tokens of alone) {
            singles.push(await quantEngine.embedBatch([tokens]));
          }
          const longVector = await quantEngine.embedBatch([long]);
          const model = loadReferenceModel(quantPath);
          try {
            const check = (label: string, got: Float32Array, tokens: Uint32Array) => {
              const c = cosine(got, referenceEmbedding(model, Array.from(tokens)));
              t.ok(c >= 0.9995, `${label} (${tokens.length} tokens): cosine ${c}`);
            };
            batch.forEach((tokens, i) => check(`batch row ${i}`, row(vectors, i, dimensions), tokens));
            alone.forEach((tokens, i) => check("alone", singles[i], tokens));
            check("long", longVector, long);
          } finally {
            model.close();
          }
        } finally {
          await quantEngine.dispose();
        }
      });
    }
  }

  // Patch 0006: llama.cpp maps the whole file populated; a weight copied into another buffer (here the
  // CPU repack, which takes Q4_K on every x86 CPU with AVX2) must leave the mapping, or the process holds
  // it twice. /proc/self/smaps lists which file ranges are still mapped.
  const hasAvx2 = flags.has("avx2");
  t.test("weights repacked at load are no longer mapped from the file", { skip: hasAvx2 ? false : "needs Linux on x86 with AVX2" }, async (t) => {
    // smaps names the file by its real path (.cache may be a link, as in a git worktree)
    const quantPath = fs.realpathSync(await testModel({ ...TINY_K, fileType: "q4_k_m" }));
    const page = 4096;
    const reader = new GgufReader(quantPath);
    const q4k = [...reader.tensors.values()].filter((info) => info.type === GGML_Q4_K).map((info) => {
      // whole pages only: a tensor's first and last page may be shared with a neighbour that stays mapped
      const end = info.offset + reader.byteLength(info);
      return { name: info.name, first: Math.ceil(info.offset / page) * page, last: Math.floor(end / page) * page };
    }).filter((range) => range.last > range.first);
    const tokenEmbdBytes = reader.byteLength(reader.tensor("token_embd.weight"));
    reader.close();
    const quantEngine = await loadSmallEngine(quantPath);
    try {
      // Patch 0007: weights read in place (token_embd) were populated at load, then dropped from RSS
      const residentKb = fs.readFileSync("/proc/self/smaps", "utf8").split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)
        .filter((mapping) => mapping.split("\n")[0].endsWith(` ${quantPath}`))
        .reduce((sum, mapping) => sum + Number(/^Rss:\s+(\d+) kB/m.exec(mapping)?.[1] ?? 0), 0);
      t.ok(residentKb * 1024 < tokenEmbdBytes / 10, `file pages resident after load: ${residentKb} kB (token_embd: ${tokenEmbdBytes >> 10} kB)`);
      const mapped = fs.readFileSync("/proc/self/smaps", "utf8").split("\n")
        .filter((line) => /^[0-9a-f]+-[0-9a-f]+ /.test(line) && line.endsWith(` ${quantPath}`))
        .map((line) => {
          const [range, , offset] = line.split(/\s+/);
          const [start, end] = range.split("-").map((hex) => parseInt(hex, 16));
          const first = parseInt(offset, 16);
          return { first, last: first + (end - start) };
        });
      t.ok(mapped.length > 0, "the rest of the file is still mapped");
      t.ok(q4k.length >= 8, `${q4k.length} Q4_K tensors span whole pages`);
      for (const tensor of q4k) {
        const overlap = mapped.some((m) => m.first < tensor.last && tensor.first < m.last);
        t.notOk(overlap, `${tensor.name}: file bytes ${tensor.first}..${tensor.last} not mapped`);
      }
    } finally {
      await quantEngine.dispose();
    }
  });

  t.test("bad input is rejected before llama.cpp and the process stays up", async (t) => {
    const nVocab = engine.info.nVocab;
    const ok = Uint32Array.of(engine.info.bosToken, 100, engine.info.eosToken);
    const cases: [string, unknown[], string][] = [
      ["id = nVocab", [Uint32Array.of(0, nVocab, 2)], "ERR_INVALID_TOKENS"],
      ["id far out of range", [Uint32Array.of(0, 0xffffffff, 2)], "ERR_INVALID_TOKENS"],
      ["negative id (Int32Array)", [Int32Array.of(0, -1, 2)], "ERR_INVALID_TOKENS"],
      ["negative id (array)", [[0, -5, 2]], "ERR_INVALID_TOKENS"],
      ["non-integer id", [[0, 1.5, 2]], "ERR_INVALID_TOKENS"],
      ["NaN id", [[0, Number.NaN, 2]], "ERR_INVALID_TOKENS"],
      ["string id", [[0, "7", 2]], "ERR_INVALID_TOKENS"],
      // the code is set where the error happens, not found in the message
      ["string id that reads like a length error", [[0, "fit one sequence", 2]], "ERR_INVALID_TOKENS"],
      ["empty sequence", [ok, new Uint32Array(0)], "ERR_INVALID_TOKENS"],
      ["Float32Array sequence", [Float32Array.of(0, 1, 2)], "ERR_INVALID_TOKENS"],
      ["empty batch", [], "ERR_INVALID_ARG"],
      ["too many sequences", Array.from({ length: engine.limits.maxBatchSequences + 1 }, () => ok), "ERR_BATCH_LIMIT"],
      ["too many tokens", [new Uint32Array(engine.limits.maxBatchTokens - 10).fill(5), new Uint32Array(20).fill(5)], "ERR_BATCH_LIMIT"],
      ["one sequence past contextSize", [new Uint32Array(CONTEXT + 1).fill(5)], "ERR_BATCH_LIMIT"],
    ];
    for (const [name, batch, code] of cases) {
      const error = (await engine.embedBatch(batch as Uint32Array[]).then(
        () => undefined,
        (e: NativeError) => e,
      )) as NativeError | undefined;
      t.ok(error instanceof Error, `${name}: rejected`);
      t.equal(error?.code, code, `${name}: ${error?.message}`);
    }
    await t.rejects(engine.tokenize("not an array" as never), /texts must be an array/);
    await t.rejects(engine.tokenize([42] as never), /is not a string/);
    const after = await engine.embedBatch([ok]);
    t.equal(after.length, engine.info.dimensions, "still works afterwards");
  });

  t.test("a near-8192-token input goes through without a logits buffer", async (t) => {
    const model = await native.loadModel({ modelPath, contextSize: CONTEXT, batchSize: CONTEXT, sequences: 4, threads });
    try {
      const n = 8190;
      const tokens = new Uint32Array(n);
      for (let i = 0; i < n; i++) tokens[i] = 5 + ((i * 7919) % 200000);
      tokens[0] = model.info.bosToken;
      tokens[n - 1] = model.info.eosToken;
      const vector = await model.embed([tokens]);
      t.equal(vector.length, model.info.nEmbd);
      t.ok(vector.every(Number.isFinite), "finite");
      const bytes = model.outputBufferSize();
      const logitsBytes = 4 * model.info.nVocab * n;
      t.ok(bytes > 0, `output buffer ${bytes} bytes`);
      t.ok(bytes <= 4 * model.info.nEmbd * CONTEXT + (1 << 20), `output buffer ${bytes} B holds per-token embeddings at most`);
      t.ok(bytes < logitsBytes / 1000, `output buffer ${bytes} B vs ${logitsBytes} B of logits`);
    } finally {
      await model.dispose();
    }
  });

  t.test("misuse of the raw addon does not crash", async (t) => {
    const model = await native.loadModel({ modelPath, contextSize: 512, batchSize: 512, sequences: 4, threads });
    const [a, b] = await model.tokenize(["first text", "second, longer text here"]);
    // concurrent decodes on one context are serialised in C++
    const results = await Promise.all([model.embed([a]), model.embed([b]), model.embed([a, b]), model.tokenize(["x"])]);
    t.ok(cosine(results[0] as Float32Array, row(results[2] as Float32Array, 0, model.info.nEmbd)) >= 0.9999);
    t.ok(cosine(results[1] as Float32Array, row(results[2] as Float32Array, 1, model.info.nEmbd)) >= 0.9999);
    // dispose while a decode is in flight: the decode finishes, later calls reject
    const inFlight = model.embed([a, b]);
    const disposed = model.dispose();
    t.equal(model.disposed, true);
    await t.resolves(inFlight);
    await disposed;
    for (const call of [() => model.embed([a]), () => model.tokenize(["x"])]) {
      const error = (await call().then(() => undefined, (e: NativeError) => e)) as NativeError | undefined;
      t.equal(error?.code, "ERR_DISPOSED", String(error?.message));
    }
    await t.resolves(model.dispose(), "disposing twice is fine");
    await t.rejects(native.loadModel({ modelPath: path.join(os.tmpdir(), "no-such-model.gguf") }), { message: /model file not found/, code: "ERR_LOAD" });
    await t.rejects(native.loadModel({ modelPath, sequences: 300 }), { message: /sequences/, code: "ERR_INVALID_ARG" });
    t.throws(() => new (model.constructor as new () => unknown)(), /cannot be constructed directly/);
  });

  t.test("llama.cpp failures become exceptions with llama.cpp's reason", async (t) => {
    const junk = path.join(os.tmpdir(), `bge-m3-native-junk-${process.pid}.gguf`);
    fs.writeFileSync(junk, Buffer.alloc(4096, 7));
    try {
      await t.rejects(native.loadModel({ modelPath: junk }), { message: /failed to load model.*: .+/, code: "ERR_LOAD" });
    } finally {
      fs.rmSync(junk, { force: true });
    }
  });

  t.test("gpuLayers that is not an integer >= -1 is refused before C++ casts it", async (t) => {
    for (const gpuLayers of [Number.NaN, 1.5, Number.POSITIVE_INFINITY, -2]) {
      await t.rejects(native.loadModel({ modelPath, contextSize: 64, gpuLayers }), { code: "ERR_INVALID_ARG", message: /gpuLayers/ }, String(gpuLayers));
    }
  });

  t.test("dispose() lets every call made before it run, queued ones included", async (t) => {
    const small = await loadSmallEngine(modelPath);
    const input = Uint32Array.from({ length: 400 }, (_, i) => (i === 0 ? 0 : i === 399 ? 2 : 5 + i));
    // handed to the engine before dispose(), but still waiting for the decode before them
    const batches = [small.embedBatch([input]), small.embedBatch([input]), small.embedBatch([input])];
    const disposed = small.dispose();
    const settled = await Promise.allSettled(batches);
    t.same(settled.map((r) => r.status), ["fulfilled", "fulfilled", "fulfilled"], JSON.stringify(settled.map((r) => (r as PromiseRejectedResult).reason?.message)));
    await disposed;

    const model = await native.loadModel({ modelPath, contextSize: 512, batchSize: 512, sequences: 1, threads });
    // more calls than the uv pool has threads: some are queued in libuv when dispose() is called
    const calls = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? model.embed([input]) : model.tokenize(["queued text"])));
    const freed = model.dispose();
    const results = await Promise.allSettled(calls);
    t.same(results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason.message), [], "none rejected");
    await freed;
    await t.rejects(model.tokenize(["after"]), { code: "ERR_DISPOSED" });
  });

  t.test("takeProfile() does not wait for a running decode", async (t) => {
    const model = await native.loadModel({ modelPath, contextSize: 4096, batchSize: 4096, sequences: 1, threads, profile: true });
    try {
      const ids = Uint32Array.from({ length: 4000 }, (_, i) => (i === 0 ? 0 : i === 3999 ? 2 : 5 + ((i * 7919) % 200000)));
      let done = false;
      const decode = model.embed([ids]).then(() => (done = true));
      // the decode's first graph nodes are timed: it runs (a 4,000-token decode is dozens of nodes, ~0.3 s on 2 cores)
      let first: Record<string, [number, number]> = {};
      await waitUntil(() => Object.keys((first = model.takeProfile())).length > 0, "a profiled node");
      t.notOk(done, "the decode was still running when its first nodes were taken");
      await decode;
      // a takeProfile() that waited for the decode would have taken every node, leaving nothing here
      const rest = model.takeProfile();
      t.ok(Object.keys(rest).length > 0, `the rest of the decode's profile is there (${Object.keys(first).length} ops taken while it ran)`);
    } finally {
      await model.dispose();
    }
  });

  t.test("a cancelled embed stops between graph nodes and leaves the context clean", async (t) => {
    // profiled: the timed nodes show the decode running before it is cancelled
    const model = await native.loadModel({ modelPath, contextSize: CONTEXT, batchSize: CONTEXT, sequences: 2, threads, profile: true });
    try {
      const short = Uint32Array.of(0, 35378, 8999, 2);
      const before = await model.embed([short]);
      model.takeProfile();
      const long = Uint32Array.from({ length: 8190 }, (_, i) => (i === 0 ? 0 : i === 8189 ? 2 : 5 + ((i * 7919) % 200000)));
      const cancel = new Int32Array(1);
      let done = false;
      const running = model.embed([long], cancel).finally(() => (done = true));
      await waitUntil(() => done || Object.keys(model.takeProfile()).length > 0, "a profiled node");
      t.notOk(done, "the decode was running when it was cancelled");
      Atomics.store(cancel, 0, 1);
      // the flag is read between graph nodes: a decode that ran to its end would resolve with the vector
      await t.rejects(running, { code: "ERR_CANCELLED" });
      t.same(Array.from(await model.embed([short])), Array.from(before), "the next call's vector is the one before the cancel");

      await t.rejects(model.embed([short], Int32Array.of(1)), { code: "ERR_CANCELLED" }, "cancelled before it started");
      await t.rejects(model.embed([short], new Float32Array(1) as never), { code: "ERR_INVALID_ARG" });
    } finally {
      await model.dispose();
    }
  });

  t.test("device selection", async (t) => {
    if (!native.build.cuda) {
      await t.rejects(
        loadNativeEmbedder({ modelPath, device: "cuda", threads, contextSize: 512, maxBatchTokens: 512, maxBatchSequences: 1 }),
        { name: "DeviceUnavailableError", message: /DEVICE=cuda/ },
      );
    }
    const auto = await loadNativeEmbedder({ modelPath, device: "auto", threads, contextSize: 512, maxBatchTokens: 512, maxBatchSequences: 1 });
    try {
      const hasGpu = native.build.cuda && native.devices().some((d) => d.type === "gpu");
      t.equal(auto.device, hasGpu ? "cuda" : "cpu", "auto falls back to the CPU without a GPU");
    } finally {
      await auto.dispose();
    }
    t.match(native.systemInfo(), /CPU/);
    t.ok(native.devices().some((d) => d.type === "cpu"));
    t.equal(native.getLogLevel(), "none", "quiet by default");
  });
}
