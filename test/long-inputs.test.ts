// Long inputs through the native engine's CPU attention (native/patches/0003-*.patch: flash attention with
// F32 K/V and its own tiled kernel): results against the float64 reference and against llama.cpp's plain
// path (flash attention off, full F32 scores), packed sequences whose edges cut the kernel's tiles, and the
// compute buffer as the context length doubles. The model has BGE-M3's head size (64), which that kernel
// needs. Skipped when the addon is not built (failed instead under BGE_M3_REQUIRE_NATIVE=1).
import os from "node:os";
import t from "tap";
import { expectedCpuKernels, reportedCpuKernels } from "./helpers/cpu-kernels.js";
import { nativeAddonOrSkip } from "./helpers/native.js";
import type { NativeAddon, NativeEmbeddingModel } from "../src/engine/native/addon-types.js";
import { loadNativeEmbedder } from "../src/engine/native/native-embedder.js";
import type { Embedder } from "../src/engine/types.js";
import { TINY_HEAD64, testModel } from "./helpers/models.js";
import { cosine, referenceEmbed } from "./helpers/reference.js";

const addon = nativeAddonOrSkip(t);

// The long input's length (default 4,096; the longest input is twice it less 2, 8,190, in a context of twice it,
// at least 4,096 for the packed batch below). Only for slow runs: scripts/check-arm64.sh sets a shorter one
// under emulation.
const LONG = Number(process.env.BGE_M3_LONG_TOKENS) || 4096;
const fmt = (n: number) => n.toLocaleString("en-US");

/** Deterministic pseudo-random token ids (not special tokens) framed by <s> ... </s>. */
function tokens(count: number, seed: number, bos: number, eos: number, nVocab: number): number[] {
  let x = seed >>> 0 || 1;
  const ids = [bos];
  while (ids.length < count - 1) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    ids.push(10 + (x % (nVocab - 20)));
  }
  ids.push(eos);
  return ids;
}

if (addon) {
  const native: NativeAddon = addon;
  const modelPath = await testModel(TINY_HEAD64);
  const CONTEXT = Math.max(2 * LONG, 4096);
  const LONGEST = 2 * LONG - 2;
  const threads = Math.min(2, os.availableParallelism());
  const options = { modelPath, device: "cpu" as const, threads, contextSize: CONTEXT, maxBatchTokens: CONTEXT, maxBatchSequences: 8 };

  // The build's attention products besides F32 (int16 on AVX2 without AVX-512, bf16 with AVX512-BF16; the addon
  // reports which, test/native-engine.test.ts checks that against the CPU), asked for by name: this F32 model's
  // default (auto) is F32. A build with neither runs F32 for "int16".
  const approxName = reportedCpuKernels(native).attention ?? "int16";
  let flash: Embedder;
  let plain: Embedder;
  let approx: Embedder;
  t.before(async () => {
    flash = await loadNativeEmbedder(options); // the CPU default for F32 weights: flash attention, F32 K/V and products
    plain = await loadNativeEmbedder(options, { flashAttention: "off" });
    approx = await loadNativeEmbedder({ ...options, attentionPrecision: approxName });
  });
  t.teardown(async () => {
    await flash?.dispose();
    await plain?.dispose();
    await approx?.dispose();
  });
  const approxRan = () => approx.attentionPrecision !== "f32";

  // raw pooled vectors: cosine() does not depend on their length
  const embedOne = (engine: Embedder, ids: readonly number[]) => engine.embedBatch([Uint32Array.from(ids)]);

  t.test("the engine's CPU default is flash attention with F32 K/V, its products chosen by the weights", async (t) => {
    const calls = t.capture(native, "loadModel", native.loadModel);
    const engine = await loadNativeEmbedder({ ...options, contextSize: 512, maxBatchTokens: 512 });
    await engine.dispose();
    t.match(calls()[0]?.args[0], { flashAttention: "auto", f32KeyValues: true, attentionProducts: "auto" });
    t.equal(engine.attentionPrecision, "f32", "F32 weights keep F32 attention");
  });

  t.test(`${approxName} attention products at ${fmt(LONG)} tokens: within 0.9999 of F32 attention (the gate)`, async (t) => {
    const { ids, vector: want } = referenceOf4k();
    const got = await embedOne(approx, ids);
    const exact = await embedOne(flash, ids);
    if (!approxRan()) {
      t.comment("this build has neither int16 nor bf16 attention products: ATTENTION_PRECISION=int16 ran f32");
      t.same(got, exact, "then the vectors are the F32 kernel's, bit for bit");
      return;
    }
    t.comment(`${approxName} attention products ran`);
    t.ok(cosine(got, exact) >= 0.9999, `cosine to F32 attention ${cosine(got, exact)}`);
    t.ok(cosine(got, want) >= 0.99999, `cosine to the float64 reference ${cosine(got, want)}`);
    t.notSame(got, exact, "and it is another computation, not the F32 one");
  });

  // the float64 reference of one 4,096-token input (~20 s of JS on 2 cores), shared by two checks
  let reference4k: { ids: number[]; vector: Float64Array } | undefined;
  const referenceOf4k = () => {
    reference4k ??= (() => {
      const ids = tokens(LONG, LONG, flash.info.bosToken, flash.info.eosToken, flash.info.nVocab);
      return { ids, vector: referenceEmbed(modelPath, ids) };
    })();
    return reference4k;
  };

  t.test(`${fmt(LONG)} tokens match the float64 reference`, async (t) => {
    const { ids, vector: want } = referenceOf4k();
    const got = await embedOne(flash, ids);
    t.ok(cosine(got, want) >= 0.99999, `cosine to reference ${cosine(got, want)}`);
  });

  t.test(`${fmt(LONGEST)} tokens match the plain path (and the reference when REFERENCE_8K=1)`, async (t) => {
    const ids = tokens(LONGEST, LONGEST, flash.info.bosToken, flash.info.eosToken, flash.info.nVocab);
    const got = await embedOne(flash, ids);
    const old = await embedOne(plain, ids);
    t.ok(cosine(got, old) >= 0.999999, `cosine to plain path ${cosine(got, old)}`);
    if (process.env.REFERENCE_8K === "1") {
      const want = referenceEmbed(modelPath, ids);
      t.ok(cosine(got, want) >= 0.99999, `cosine to reference ${cosine(got, want)}`);
    }
  });

  t.test(`a Q8_0 model's ${fmt(LONG)}-token input (weight products in column blocks, patch 0004) matches the reference`, async (t) => {
    // F32 weights take another path: only quantised weights reach the blocked product, and only for
    // long inputs (here 4,096 x 136-byte rows of quantised activations: 5 blocks of 960 columns; a
    // BGE_M3_LONG_TOKENS under ~2,900 makes too few blocks to split, and weights that ggml repacks, as
    // on ARM, take the repack path instead)
    const q8 = await loadNativeEmbedder({ ...options, modelPath: await testModel({ ...TINY_HEAD64, fileType: "q8_0" }), contextSize: LONG, maxBatchTokens: LONG });
    try {
      // the same ids and the F32 weights the Q8_0 file was quantised from
      const { ids, vector: want } = referenceOf4k();
      const got = await embedOne(q8, ids);
      // Q8_0 gives 0.99995 here; every block reading the first block's activations gave 0.9984
      t.ok(cosine(got, want) >= 0.9999, `cosine to reference ${cosine(got, want)}`);
    } finally {
      await q8.dispose();
    }
  });

  t.test("packed sequences whose edges cut the kernel's tiles match the plain path", async (t) => {
    const { bosToken, eosToken, nVocab } = flash.info;
    // 64-row tiles: sequences start and end mid-tile, one tile holds three sequences, one is a single token
    const seqs = [700, 1, 2, 333, 1013].map((n, i) => Uint32Array.from(tokens(Math.max(n, 2), 77 + i, bosToken, eosToken, nVocab)));
    const b = await plain.embedBatch(seqs);
    const dim = flash.info.dimensions;
    // the other products too (masked tiles, and queries whose every key of a tile is masked)
    for (const [name, engine, bound] of [["F32", flash, 0.999999], [approxName, approx, 0.9999]] as const) {
      const a = await engine.embedBatch(seqs);
      for (let i = 0; i < seqs.length; i++) {
        const c = cosine(a.subarray(i * dim, (i + 1) * dim), b.subarray(i * dim, (i + 1) * dim));
        t.ok(c >= bound, `${name} attention, sequence ${i} (${seqs[i].length} tokens): cosine ${c}`);
      }
    }
  });

  t.test(`${approxName} asked for: inputs under 512 tokens keep F32 attention, alone or packed beside a long one`, async (t) => {
    // native/kernels/flash_attn_f32.h APPROX_MIN_KEYS: a query tile takes other products than F32 only when each
    // of its queries attends to at least 512 keys
    const { bosToken, eosToken, nVocab } = flash.info;
    const dim = flash.info.dimensions;
    const [long, short, other] = [1013, 300, 45].map((n, i) => Uint32Array.from(tokens(n, 91 + i, bosToken, eosToken, nVocab)));
    t.same(await approx.embedBatch([short]), await flash.embedBatch([short]), "300 tokens alone: F32's vector, bit for bit");
    const a = await approx.embedBatch([long, short, other]);
    const b = await flash.embedBatch([long, short, other]);
    t.same(a.subarray(dim), b.subarray(dim), "300 and 45 tokens packed after 1,013: F32's vectors, bit for bit");
    if (approxRan()) {
      t.notSame(a.subarray(0, dim), b.subarray(0, dim), `while the 1,013-token input took the ${approxName} products`);
      t.ok(cosine(a.subarray(0, dim), b.subarray(0, dim)) >= 0.9999, "within the gate");
    }
  });

  t.test(`Q8_0 weights at BERT's initial scale, ${fmt(LONG)} tokens: the default (auto) within 2e-4 of F32 attention`, async (t) => {
    // auto takes int16 or bf16 products for quantised weights where the build has them; the weights' own Q8_0
    // rounding is ~10x what either adds (the full-size model's figures: native/patches/README.md)
    const q8 = { ...options, modelPath: await testModel({ ...TINY_HEAD64, fileType: "q8_0", init: "bert" }), contextSize: LONG, maxBatchTokens: LONG };
    const auto = await loadNativeEmbedder(q8);
    const exact = await loadNativeEmbedder({ ...q8, attentionPrecision: "f32" });
    try {
      const expected = expectedCpuKernels(native);
      if (expected) t.equal(auto.attentionPrecision, expected.attention ?? "f32", "what auto runs here");
      const ids = tokens(LONG, 4242, auto.info.bosToken, auto.info.eosToken, auto.info.nVocab);
      const gap = 1 - cosine(await embedOne(auto, ids), await embedOne(exact, ids));
      t.ok(gap <= 2e-4, `1 - cosine ${gap.toExponential(2)} (${auto.attentionPrecision} products)`);
    } finally {
      await auto.dispose();
      await exact.dispose();
    }
  });

  t.test("compute buffer stays bounded as the length doubles", async (t) => {
    const sizes = new Map<string, number>();
    for (const mode of ["flash", "plain"] as const) {
      for (const ctx of [LONG / 2, LONG, 2 * LONG]) {
        let model: NativeEmbeddingModel | undefined;
        try {
          model = await native.loadModel({
            modelPath, contextSize: ctx, batchSize: ctx, sequences: 1, threads, flashAttention: mode === "flash" ? "on" : "off",
          });
          sizes.set(`${mode}:${ctx}`, model.computeBufferSize());
          // the size reserved at load is the worst case of a whole-context input: unchanged after one (the
          // plain path's longest, seconds of quadratic attention, ran in the test above)
          if (mode === "flash" || ctx < 2 * LONG) {
            await model.embed([tokens(ctx, 5, model.info.bosToken, model.info.eosToken, model.info.nVocab)]);
            t.equal(model.computeBufferSize(), sizes.get(`${mode}:${ctx}`), `${mode} ${ctx}: the buffer reserved at load holds a whole-context input`);
          }
        } finally {
          await model?.dispose();
        }
      }
    }
    const [short, mid, long] = [LONG / 2, LONG, 2 * LONG];
    const k = (n: number) => `${n / 1024}k`;
    const mb = (key: string) => (sizes.get(key)! / 2 ** 20).toFixed(1);
    t.comment(`compute buffer MB, flash: ${k(short)} ${mb(`flash:${short}`)}, ${k(mid)} ${mb(`flash:${mid}`)}, ${k(long)} ${mb(`flash:${long}`)}; ` +
      `plain: ${k(short)} ${mb(`plain:${short}`)}, ${k(mid)} ${mb(`plain:${mid}`)}, ${k(long)} ${mb(`plain:${long}`)}`);
    // plain: n_tokens^2 x heads F32 scores (quadratic) + the n_tokens^2 F32 mask; flash: per-thread tiles +
    // linear activations, and no mask: a context of one sequence never has one (patch 0009)
    t.ok(sizes.get(`flash:${long}`)! < sizes.get(`plain:${long}`)! / 3, `flash ${k(long)} uses under a third of plain ${k(long)}`);
    const mask = (n: number, bytes: number) => bytes * n * n;
    const growth = (mode: string, bytes: number) =>
      (sizes.get(`${mode}:${long}`)! - mask(long, bytes)) / (sizes.get(`${mode}:${mid}`)! - mask(mid, bytes));
    t.ok(growth("flash", 0) <= 2.2, `flash, no mask: x${growth("flash", 0).toFixed(2)} from ${k(mid)} to ${k(long)}`);
    t.ok(growth("plain", 4) >= 3, `plain, less the mask: x${growth("plain", 4).toFixed(2)} from ${k(mid)} to ${k(long)}`);
    const perPair = (key: string, n: number) => sizes.get(key)! / (n * n);
    t.ok(perPair(`flash:${long}`, long) < 4, `flash: ${perPair(`flash:${long}`, long).toFixed(2)} bytes per token pair at ${k(long)} (linear parts only: falls as the length grows)`);
    t.ok(perPair(`plain:${long}`, long) >= 4 * TINY_HEAD64.heads!, "plain: scores for every head and token pair");
  });
}
