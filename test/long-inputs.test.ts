// Long inputs through the native engine's query-blocked attention (native/patches/0003-*.patch):
// results against the float64 reference and against llama.cpp's plain (unblocked) path, and the
// scheduler's compute buffer as the context length doubles. Skipped when the addon is not built.
import os from "node:os";
import t from "tap";
import type { NativeAddon, NativeEmbeddingModel } from "../src/engine/native/addon-types.js";
import { loadAddon, nativeAddonLoadError } from "../src/engine/native/load-addon.js";
import { loadNativeEmbedder } from "../src/engine/native/native-embedder.js";
import type { Embedder } from "../src/engine/types.js";
import { TINY, testModel } from "./helpers/models.js";
import { cosine, referenceEmbed } from "./helpers/reference.js";

const addon = loadAddon();

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

function normalise(v: ArrayLike<number>): Float64Array {
  const out = Float64Array.from(v);
  const norm = Math.hypot(...out);
  for (let i = 0; i < out.length; i++) out[i] /= norm;
  return out;
}

if (!addon) {
  t.plan(0, `native addon not built (${nativeAddonLoadError()}); run npm run build:native`);
} else {
  const native: NativeAddon = addon;
  const modelPath = await testModel(TINY);
  const CONTEXT = 8192;
  const threads = Math.min(2, os.availableParallelism());
  const options = { modelPath, device: "cpu" as const, threads, contextSize: CONTEXT, maxBatchTokens: CONTEXT, maxBatchSequences: 4 };

  let blocked: Embedder;
  let plain: Embedder;
  t.before(async () => {
    blocked = await loadNativeEmbedder(options, { flashAttention: "off", attentionBlock: 0 }); // blocks auto
    plain = await loadNativeEmbedder(options, { flashAttention: "off", attentionBlock: -1 });
  });
  t.teardown(async () => {
    await blocked?.dispose();
    await plain?.dispose();
  });

  const embedOne = async (engine: Embedder, ids: readonly number[]) =>
    normalise(await engine.embedBatch([Uint32Array.from(ids)]));

  t.test("4,096 tokens match the float64 reference", async (t) => {
    const ids = tokens(4096, 4096, blocked.info.bosToken, blocked.info.eosToken, blocked.info.nVocab);
    const got = await embedOne(blocked, ids);
    const want = referenceEmbed(modelPath, ids);
    t.ok(cosine(got, want) >= 0.99999, `cosine to reference ${cosine(got, want)}`);
  });

  t.test("8,190 tokens match the plain path (and the reference when REFERENCE_8K=1)", async (t) => {
    const ids = tokens(8190, 8190, blocked.info.bosToken, blocked.info.eosToken, blocked.info.nVocab);
    const got = await embedOne(blocked, ids);
    const old = await embedOne(plain, ids);
    t.ok(cosine(got, old) >= 0.999999, `cosine to plain path ${cosine(got, old)}`);
    if (process.env.REFERENCE_8K === "1") {
      const want = referenceEmbed(modelPath, ids);
      t.ok(cosine(got, want) >= 0.99999, `cosine to reference ${cosine(got, want)}`);
    }
  });

  t.test("packed sequences across block edges match the plain path", async (t) => {
    // explicit small blocks that do not divide the sequences: blocks straddle sequence boundaries
    const small = await loadNativeEmbedder({ ...options, contextSize: 2048, maxBatchTokens: 2048 }, { flashAttention: "off", attentionBlock: 100 });
    try {
      const { bosToken, eosToken, nVocab } = small.info;
      const seqs = [700, 1, 333, 1013].map((n, i) => Uint32Array.from(tokens(Math.max(n, 2), 77 + i, bosToken, eosToken, nVocab)));
      const a = await small.embedBatch(seqs);
      const b = await plain.embedBatch(seqs);
      const dim = small.info.dimensions;
      for (let i = 0; i < seqs.length; i++) {
        const c = cosine(normalise(a.subarray(i * dim, (i + 1) * dim)), normalise(b.subarray(i * dim, (i + 1) * dim)));
        t.ok(c >= 0.999999, `sequence ${i} (${seqs[i].length} tokens): cosine ${c}`);
      }
    } finally {
      await small.dispose();
    }
  });

  t.test("compute buffer stays bounded as the length doubles", async (t) => {
    const sizes = new Map<string, number>();
    for (const block of [0, -1]) {
      for (const ctx of [2048, 4096, 8192]) {
        let model: NativeEmbeddingModel | undefined;
        try {
          model = await native.loadModel({
            modelPath, contextSize: ctx, batchSize: ctx, sequences: 1, threads, flashAttention: "off", attentionBlock: block,
          });
          // the size reserved at load is the worst case of a whole-context input; check it after one too
          await model.embed([tokens(ctx, 5, model.info.bosToken, model.info.eosToken, model.info.nVocab)]);
          sizes.set(`${block}:${ctx}`, model.computeBufferSize());
        } finally {
          await model?.dispose();
        }
      }
    }
    const mb = (k: string) => (sizes.get(k)! / 2 ** 20).toFixed(1);
    t.comment(`compute buffer MB, blocked: 2k ${mb("0:2048")}, 4k ${mb("0:4096")}, 8k ${mb("0:8192")}; ` +
      `plain: 2k ${mb("-1:2048")}, 4k ${mb("-1:4096")}, 8k ${mb("-1:8192")}`);
    // plain: n_tokens^2 x heads F32 scores (quadratic); blocked: a fixed KQ scratch + linear
    // activations + the n_tokens^2 F32 mask (4 bytes per token pair, not 4 x heads)
    t.ok(sizes.get("0:8192")! < sizes.get("-1:8192")! / 3, "blocked 8k uses under a third of plain 8k");
    // all but the mask (n^2 F32) grows at most linearly with blocks; the plain path's scores grow 4x
    const mask = (n: number) => 4 * n * n;
    const growth = (block: number) => (sizes.get(`${block}:8192`)! - mask(8192)) / (sizes.get(`${block}:4096`)! - mask(4096));
    t.ok(growth(0) <= 2.2, `blocked, less the mask: x${growth(0).toFixed(2)} from 4k to 8k`);
    t.ok(growth(-1) >= 3, `plain, less the mask: x${growth(-1).toFixed(2)} from 4k to 8k`);
    const perPair = (k: string, n: number) => sizes.get(k)! / (n * n);
    t.ok(perPair("0:8192", 8192) < 8, `blocked: ${perPair("0:8192", 8192).toFixed(2)} bytes per token pair at 8k (mask: 4)`);
    t.ok(perPair("-1:8192", 8192) >= 4 * TINY.heads!, "plain: scores for every head and token pair");
  });
}
