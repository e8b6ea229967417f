// BGE-M3's sparse and ColBERT heads in the native engine, against the float64 reference (hidden states
// from test/helpers/reference.ts, heads and scores from test/helpers/reference-heads.ts).
import os from "node:os";
import t, { type Test } from "tap";
import type { NativeError } from "../src/engine/native/addon-types.js";
import { loadNativeEmbedder } from "../src/engine/native/native-embedder.js";
import type { Embedder, HeadRequest, SequenceOutputs } from "../src/engine/types.js";
import { randomHeads } from "./helpers/heads.js";
import { TINY, testModel } from "./helpers/models.js";
import { nativeAddonOrSkip } from "./helpers/native.js";
import { cosine, loadReferenceModel, referenceHiddenStates, type ReferenceModel } from "./helpers/reference.js";
import { referenceColbert, referenceSparse } from "./helpers/reference-heads.js";

const addon = nativeAddonOrSkip(t);

const TEXTS = [
  "The quick brown fox jumps over the lazy dog, and the dog does not mind the fox.",
  "a",
  "BGE-M3 est un modèle d'embeddings multilingue. 多语言嵌入模型。",
  "Sparse weights keep one value per token id: repeated repeated repeated words count once.",
];
const BOTH: HeadRequest = { sparse: true, colbert: true, hidden: false };

if (addon) {
  const modelPath = await testModel(TINY);
  const heads = randomHeads(TINY.width!);
  const threads = Math.min(2, os.availableParallelism());
  let engine: Embedder;
  let reference: ReferenceModel;
  t.before(async () => {
    engine = await loadNativeEmbedder({
      modelPath, device: "cpu", threads, contextSize: 8192, maxBatchTokens: 4096, maxBatchSequences: 16, heads,
    });
    reference = loadReferenceModel(modelPath);
  });
  t.teardown(async () => {
    reference?.close();
    await engine?.dispose();
  });

  /** <s>, </s>, <pad> and <unk>: the ids FlagEmbedding leaves out of sparse vectors. */
  const DROPPED = new Set([0, 1, 2, 3]);

  /** Checks one sequence's head outputs against the reference's. */
  function checkHeads(t: Test, ids: Uint32Array, out: SequenceOutputs, request: HeadRequest, label: string): void {
    const states = referenceHiddenStates(reference, Array.from(ids));
    if (request.sparse) {
      const expected = referenceSparse(states, Array.from(ids), heads, DROPPED);
      const sparse = out.sparse!;
      t.ok(sparse, `${label}: sparse present`);
      t.ok(sparse.indices.every((id, i) => i === 0 || sparse.indices[i - 1] < id), `${label}: ascending unique ids`);
      // Weights here are ~0.1-1. ggml evaluates GELU through an fp16 table, which moves the F32 model's hidden
      // states ~1e-3 (relative) from float64's: weights agree to 1e-3, and ids within that of relu's cut at 0
      // may fall either side of it.
      const TOLERANCE = 1e-3;
      const got = new Map(Array.from(sparse.indices, (id, i) => [id, sparse.values[i]]));
      const missing = [...expected].filter(([id, w]) => w > TOLERANCE && !got.has(id));
      const extra = [...got].filter(([id, w]) => !expected.has(id) && w > TOLERANCE);
      t.same({ missing, extra }, { missing: [], extra: [] }, `${label}: the reference's token ids`);
      t.ok(got.size > 0, `${label}: some token has a weight`);
      const worst = Math.max(0, ...[...got].map(([id, w]) => Math.abs(w - (expected.get(id) ?? 0))));
      t.ok(worst < TOLERANCE, `${label}: sparse weights within ${TOLERANCE} of float64 (worst ${worst.toExponential(2)})`);
    } else {
      t.equal(out.sparse, undefined, `${label}: no sparse unless asked`);
    }
    if (request.colbert) {
      const expected = referenceColbert(states, ids.length, heads);
      const dim = heads.colbert.outputSize;
      t.equal(out.colbert!.length, (ids.length - 1) * dim, `${label}: one ColBERT vector per token after <s>`);
      const worst = Math.min(...expected.map((v, r) => cosine(out.colbert!.subarray(r * dim, (r + 1) * dim), v)));
      t.ok(worst > 0.99999, `${label}: every ColBERT vector within cosine 0.99999 of float64 (worst ${worst.toFixed(7)})`);
    } else {
      t.equal(out.colbert, undefined, `${label}: no ColBERT unless asked`);
    }
  }

  t.test("heads in a batch match the float64 reference and leave the pooled vectors unchanged", async (t) => {
    t.equal(engine.heads?.colbertDimensions, TINY.width);
    const sequences = await engine.tokenize(TEXTS);
    const requests: HeadRequest[] = [
      BOTH,
      { sparse: true, colbert: false, hidden: false },
      { sparse: false, colbert: true, hidden: true },
      { sparse: false, colbert: false, hidden: false },
    ];
    const outputs = await engine.heads!.embedBatch(sequences, requests);
    const plain = await engine.embedBatch(sequences);
    outputs.forEach((out, i) => {
      t.same(Array.from(out.pooled), Array.from(plain.subarray(i * TINY.width!, (i + 1) * TINY.width!)), `text ${i}: pooled vector as without heads`);
      checkHeads(t, sequences[i], out, requests[i], `text ${i}`);
    });
  });

  t.test("a sequence alone gets what it gets in a batch", async (t) => {
    const sequences = await engine.tokenize(TEXTS);
    const batch = await engine.heads!.embedBatch(sequences, sequences.map(() => BOTH));
    const alone = await engine.heads!.embedBatch([sequences[2]], [BOTH]);
    t.same(Array.from(alone[0].sparse!.indices), Array.from(batch[2].sparse!.indices));
    const drift = Math.max(...Array.from(alone[0].colbert!, (v, i) => Math.abs(v - batch[2].colbert![i])));
    t.ok(drift < 1e-5, `ColBERT vectors alone vs in a batch differ by ${drift.toExponential(2)}`);
    checkHeads(t, sequences[2], alone[0], BOTH, "alone");
  });

  t.test("a long input (1,500 tokens) takes the same path", async (t) => {
    const ids = Uint32Array.from({ length: 1500 }, (_, i) => (i === 0 ? 0 : i === 1499 ? 2 : 5 + ((i * 7919) % 20000)));
    const [out] = await engine.heads!.embedBatch([ids], [BOTH]);
    checkHeads(t, ids, out, BOTH, "1,500 tokens");
  });

  t.test("sparse token strings are the vocabulary's entries", async (t) => {
    const [ids] = await engine.tokenize(["hello world"]);
    t.equal(engine.vocabulary.texts(ids.subarray(1, -1)).join(""), "▁hello▁world", "SentencePiece pieces with their word marker");
    t.same(engine.vocabulary.texts(Uint32Array.of(0, 2)), ["<s>", "</s>"]);
    t.same([...engine.vocabulary.special].sort((a, b) => a - b), [0, 1, 2, 3, 250001], "<s> <pad> </s> <unk> <mask> are special");
  });

  t.test("the last hidden states of every token after <s> match the float64 reference; <s>'s is the pooled vector", async (t) => {
    const sequences = await engine.tokenize(TEXTS);
    const outputs = await engine.heads!.embedBatch(sequences, sequences.map((_, i) => ({ sparse: i === 1, colbert: i === 2, hidden: i !== 3 })));
    const dim = TINY.width!;
    for (const [i, ids] of sequences.entries()) {
      const hidden = outputs[i].hidden;
      if (i === 3) {
        t.equal(hidden, undefined, "no hidden states unless asked");
        continue;
      }
      const states = referenceHiddenStates(reference, Array.from(ids));
      t.equal(hidden!.length, (ids.length - 1) * dim, `text ${i}: one row per token after <s>`);
      const rows = Array.from({ length: ids.length }, (_, r) => states.subarray(r * dim, (r + 1) * dim));
      const worst = Math.min(...rows.slice(1).map((row, r) => cosine(hidden!.subarray(r * dim, (r + 1) * dim), row)));
      t.ok(worst > 0.99999, `text ${i}: every row within cosine 0.99999 of float64 (worst ${worst.toFixed(7)})`);
      t.ok(cosine(outputs[i].pooled, rows[0]) > 0.99999, `text ${i}: the pooled vector is <s>'s hidden state`);
    }
  });

  t.test("misuse is refused with codes", async (t) => {
    const plain = await addon.loadModel({ modelPath, contextSize: 512, threads });
    t.teardown(() => plain.dispose());
    t.equal(plain.info.colbertSize, 0, "no heads: colbertSize 0");
    const [ids] = await plain.tokenize(["x"]);
    const noHeads = (await plain.embedWithHeads([ids], Uint8Array.of(1)).catch((e: NativeError) => e)) as NativeError;
    t.equal(noHeads.code, "ERR_NO_HEADS");
    const withHeads = await addon.loadModel({
      modelPath, contextSize: 512, threads, sequences: 2,
      heads: {
        hiddenSize: 64, sparseWeight: heads.sparse.weight, sparseBias: heads.sparse.bias, colbertSize: 64,
        colbertWeight: heads.colbert.weight, colbertBias: heads.colbert.bias,
      },
    });
    t.teardown(() => withHeads.dispose());
    const wrongCount = (await withHeads.embedWithHeads([ids, ids], Uint8Array.of(1)).catch((e: NativeError) => e)) as NativeError;
    t.equal(wrongCount.code, "ERR_INVALID_ARG", "one mask per sequence");
    const badMask = (await withHeads.embedWithHeads([ids], Uint8Array.of(8)).catch((e: NativeError) => e)) as NativeError;
    t.equal(badMask.code, "ERR_INVALID_ARG", "masks are 0..7");
    // <s> alone has no position after it: every output asked for comes back empty
    const lone = await withHeads.embedWithHeads([ids.subarray(0, 1)], Uint8Array.of(7));
    t.same(
      [lone.sparse[0]?.indices.length, lone.colbert[0]?.length, lone.hidden[0]?.length, lone.pooled.length],
      [0, 0, 0, 64],
      "a one-token sequence gets empty head outputs",
    );
    const wrongWidth = (await addon
      .loadModel({
        modelPath, contextSize: 512, threads,
        heads: { hiddenSize: 32, sparseWeight: new Float32Array(32), sparseBias: 0, colbertSize: 8, colbertWeight: new Float32Array(256), colbertBias: new Float32Array(8) },
      })
      .catch((e: NativeError) => e)) as NativeError;
    t.equal(wrongWidth.code, "ERR_INVALID_ARG", "heads of another width are refused at load");
    t.match(wrongWidth.message, /hiddenSize is 32 but the model's hidden states have 64/);
  });
}
