// The synthetic BGE-M3 GGUFs: the writer's format, the quantizers' bytes, and
// that llama.cpp (through node-llama-cpp) computes what an independent float64
// forward pass computes from the same file.
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, Llama, LlamaLogLevel, LlamaModel, readGgufFileInfo, Token } from "node-llama-cpp";
import t from "tap";
import { BgeM3Options, planBgeM3Tensors } from "../scripts/gguf/bge-m3.js";
import { quantizeF16, quantizeQ4_K, quantizeQ6_K, quantizeQ8_0 } from "../scripts/gguf/quantize.js";
import { GgmlType, gguf, GgufValueType, writeGgufFile } from "../scripts/gguf/writer.js";
import { dequantize, GGML_F16, GGML_Q4_K, GGML_Q6_K, GGML_Q8_0, GgufReader } from "./helpers/gguf-reader.js";
import { testModel, TINY, TINY_K } from "./helpers/models.js";
import { cosine, loadReferenceModel, referenceEmbedding } from "./helpers/reference.js";

const scratch = mkdtempSync(join(tmpdir(), "gguf-model-test-"));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));

const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

/** Integer/IEEE-only input so it is bit-identical everywhere (no Math.log/cos). */
function goldenInput(): Float32Array {
  const blocks = 64;
  const x = new Float32Array(blocks * 256);
  let s = 0x12345678;
  const next = (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  const scales = [0.02, 1, 1e-3, 50, 0.02, 1e-6, 0.05, 0.3];
  for (let b = 0; b < blocks; b++)
    for (let i = 0; i < 256; i++) {
      let v = (next() + next() + next() + next() - 2 * 2 ** 32) / 2 ** 32 * scales[b % 8];
      if (b % 8 === 4 && i % 17 === 0) v *= 20; // outliers
      if (b % 8 === 6) v = Math.abs(v); // min > 0
      if (b % 16 === 9 && i < 128) v = 0; // half-empty super-block
      if (b === 13) v = 0; // empty super-block
      x[b * 256 + i] = v;
    }
  return x;
}

t.test("quantizers reproduce ggml's reference quantizers byte for byte", async (t) => {
  // Hashes of quantize_row_{q8_0,q4_K,q6_K}_ref and GGML_FP32_TO_FP16 from
  // /tmp/llama-src/ggml/src/ggml-quants.c (node-llama-cpp's pinned llama.cpp,
  // gcc -O2, x86-64) run on this exact input.
  const x = goldenInput();
  t.equal(sha256(new Uint8Array(x.buffer)), "939e4caecf8d21a3932a75a8384a5f569344aa0cf409844ecef3edfd753e82da", "input");
  t.equal(sha256(quantizeQ8_0(x)), "4c13e4627e9ddd481e719fa0795c016e8fa4350044226ffc5e1d4af6fbe44046", "Q8_0");
  t.equal(sha256(quantizeQ4_K(x)), "1341feb039a5636d35ed56bc283ce65cb6b48a1ae859578fcdce768d45ac0be1", "Q4_K");
  t.equal(sha256(quantizeQ6_K(x)), "aa94ffdf6e5e4dcd744eebbe97a94a2da487f5fcac4f2ccaae2a3dca0f69ffbb", "Q6_K");
  t.equal(sha256(quantizeF16(x)), "a33973e42094401357a9866860a9b0c16a711fd9434e9b225116c9f4717ca7eb", "F16");
});

t.test("quantized blocks dequantize (independently) to their source", async (t) => {
  const x = goldenInput();
  const n = x.length;
  const relRms = (type: number, bytes: Uint8Array, from = 0, to = n): number => {
    const y = dequantize(type, bytes, n);
    let err = 0, ref = 0;
    for (let i = from; i < to; i++) {
      err += (y[i] - x[i]) ** 2;
      ref += x[i] ** 2;
    }
    return Math.sqrt(err / ref);
  };
  // per-block bound: Q8_0 rounds to d/2, plus d's own fp16 rounding times |q| <= 127.
  // Blocks whose d = amax/127 is below fp16's normal range (the 1e-6 ones) lose
  // d to underflow: a limit of the format, so they are left out.
  const q8 = dequantize(GGML_Q8_0, quantizeQ8_0(x), n);
  let worst = 0, checked = 0;
  for (let b = 0; b < n / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++)
      amax = Math.max(amax, Math.abs(x[b * 32 + j]));
    const d = amax / 127;
    if (d < 2 ** -14)
      continue;
    checked++;
    for (let j = 0; j < 32; j++)
      worst = Math.max(worst, Math.abs(q8[b * 32 + j] - x[b * 32 + j]) / d);
  }
  t.ok(checked > 300 && worst <= 0.57, `Q8_0 worst error ${worst.toFixed(3)} d over ${checked} blocks`);
  const f16 = dequantize(GGML_F16, quantizeF16(x), n);
  t.ok(x.every((v, i) => Math.abs(f16[i] - v) <= Math.abs(v) * 2 ** -11 + 2 ** -25), "F16 within half an ulp");

  // Gaussian-like super-blocks 0..7 (the rest are edge cases): measured 0.0049 / 0.0164 / 0.0706
  const gaussianEnd = 8 * 256;
  const e8 = relRms(GGML_Q8_0, quantizeQ8_0(x), 0, gaussianEnd);
  const e6 = relRms(GGML_Q6_K, quantizeQ6_K(x), 0, gaussianEnd);
  const e4 = relRms(GGML_Q4_K, quantizeQ4_K(x), 0, gaussianEnd);
  t.ok(e8 < 0.006, `Q8_0 relative RMS error ${e8.toFixed(4)}`);
  t.ok(e6 < 0.025, `Q6_K relative RMS error ${e6.toFixed(4)}`);
  t.ok(e4 < 0.09, `Q4_K relative RMS error ${e4.toFixed(4)}`);
  t.ok(dequantize(GGML_Q4_K, quantizeQ4_K(x), n).subarray(13 * 256, 14 * 256).every((v) => v === 0), "empty block stays zero");
  t.ok(dequantize(GGML_Q6_K, quantizeQ6_K(x), n).subarray(13 * 256, 14 * 256).every((v) => v === 0), "empty block stays zero");
});

t.test("GGUF writer: every metadata type and aligned tensors read back", async (t) => {
  const path = join(scratch, "writer.gguf");
  const f32 = Float32Array.from({ length: 15 }, (_, i) => i / 3 - 2);
  const f16src = Float32Array.from({ length: 7 }, (_, i) => i * 0.25);
  const q8src = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i));
  await writeGgufFile(path, {
    metadata: {
      "general.architecture": gguf.str("test"),
      "t.u8": gguf.u8(200),
      "t.u32": gguf.u32(4000000000),
      "t.i32": gguf.i32(-7),
      "t.u64": gguf.u64(2n ** 40n),
      "t.f32": gguf.f32(0.5),
      "t.f64": gguf.f64(Math.PI),
      "t.bool": gguf.bool(true),
      "t.utf8": gguf.str("naïve ▁ 模型"),
      "t.strs": gguf.strArray(["", "a", "▁b"]),
      "t.f32s": gguf.numArray(GgufValueType.FLOAT32, [1.5, -2]),
      "t.i32s": gguf.numArray(GgufValueType.INT32, [-1, 2]),
      "t.u8s": gguf.numArray(GgufValueType.UINT8, [0, 255])
    },
    tensors: [
      { name: "a", shape: [5, 3], type: GgmlType.F32, data: () => [new Uint8Array(f32.buffer)] },
      { name: "b", shape: [7], type: GgmlType.F16, data: () => [quantizeF16(f16src)] },
      { name: "c", shape: [32, 2], type: GgmlType.Q8_0, data: () => [quantizeQ8_0(q8src)] }
    ]
  });
  const r = new GgufReader(path);
  t.teardown(() => r.close());
  t.equal(r.version, 3);
  t.same(Object.fromEntries([...r.metadata].filter(([k]) => k.startsWith("t."))), {
    "t.u8": 200, "t.u32": 4000000000, "t.i32": -7, "t.u64": 2n ** 40n, "t.f32": 0.5, "t.f64": Math.PI, "t.bool": true,
    "t.utf8": "naïve ▁ 模型", "t.strs": ["", "a", "▁b"], "t.f32s": [1.5, -2], "t.i32s": [-1, 2], "t.u8s": [0, 255]
  });
  t.same(r.metadataTypes.get("t.u8s"), [GgufValueType.ARRAY, GgufValueType.UINT8]);
  t.same(r.metadataTypes.get("t.u64"), [GgufValueType.UINT64]);
  for (const info of r.tensors.values())
    t.equal(info.offset % 32, 0, `${info.name} is 32-byte aligned`);
  t.same(Array.from(r.floats("a")), Array.from(f32));
  t.same(Array.from(r.floats("b")), Array.from(f16src));
  t.same(r.tensor("c").dims, [32, 2]);
  t.ok(r.floats("c").every((v, i) => Math.abs(v - q8src[i]) < 0.01));

  // and node-llama-cpp's own parser agrees on the layout
  const info = await readGgufFileInfo(path, { logWarnings: false });
  t.same(info.tensorInfo?.map((x) => [x.name, x.dimensions.map(Number), x.ggmlType]),
    [["a", [5, 3], 0], ["b", [7], 1], ["c", [32, 2], 8]]);
});

t.test("tensor plan follows llama.cpp's BERT layout and Q4_K_M choices", async (t) => {
  const plan = planBgeM3Tensors({ ...TINY_K, fileType: "q4_k_m" }, 4096);
  const types = Object.fromEntries(plan.map((p) => [p.name, p.type]));
  t.equal(plan.length, 5 + 16 * 2, "5 embedding tensors + 16 per layer");
  t.equal(types["token_embd.weight"], GgmlType.Q6_K, "token_embd is the tied output: Q6_K");
  t.equal(types["position_embd.weight"], GgmlType.F32);
  t.equal(types["token_types.weight"], GgmlType.F32);
  t.equal(types["blk.0.attn_q.weight"], GgmlType.Q4_K);
  t.equal(types["blk.0.attn_v.weight"], GgmlType.Q4_K, "use_more_bits(0, 2) is false");
  t.equal(types["blk.1.attn_v.weight"], GgmlType.Q6_K, "last eighth gets Q6_K");
  t.equal(types["blk.1.ffn_down.weight"], GgmlType.Q6_K);
  t.equal(types["blk.0.ffn_up.bias"], GgmlType.F32);
  const full = Object.fromEntries(planBgeM3Tensors({ fileType: "q4_k_m" }, 250002).map((p) => [p.name, p.type]));
  const q6Layers = [...Array(24).keys()].filter((i) => full[`blk.${i}.ffn_down.weight`] === GgmlType.Q6_K);
  t.same(q6Layers, [0, 1, 2, 5, 8, 11, 14, 17, 20, 21, 22, 23], "use_more_bits over 24 layers");
  const narrow = Object.fromEntries(planBgeM3Tensors({ ...TINY, fileType: "q4_k_m" }, 4096).map((p) => [p.name, p.type]));
  t.equal(narrow["blk.0.attn_q.weight"], GgmlType.Q8_0, "64-wide rows cannot hold Q4_K: Q8_0 fallback");
  t.equal(narrow["token_embd.weight"], GgmlType.Q8_0);
});

let llamaPromise: Promise<Llama> | undefined;
const llama = (): Promise<Llama> => llamaPromise ??= getLlama({ gpu: false, logLevel: LlamaLogLevel.error });
t.teardown(async () => {
  if (llamaPromise !== undefined)
    await (await llamaPromise).dispose();
});

/** Embeds token-id lists with llama.cpp; batch = context so nothing is split into 512-token ubatches. */
async function llamaEmbeddings(modelPath: string, inputs: number[][], contextSize = 512): Promise<number[][]> {
  const model = await (await llama()).loadModel({ modelPath });
  try {
    return await embedWith(model, inputs, contextSize);
  } finally {
    await model.dispose();
  }
}

/** The same with a loaded model (node-llama-cpp parses a real vocabulary's 250,002 tokens per load: seconds). */
async function embedWith(model: LlamaModel, inputs: number[][], contextSize: number): Promise<number[][]> {
  const ctx = await model.createEmbeddingContext({ contextSize, batchSize: contextSize, threads: 2 });
  try {
    const out: number[][] = [];
    for (const ids of inputs)
      out.push([...(await ctx.getEmbeddingFor(ids as Token[])).vector]);
    return out;
  } finally {
    await ctx.dispose();
  }
}

function referenceEmbeddings(modelPath: string, inputs: number[][]): Float64Array[] {
  const ref = loadReferenceModel(modelPath);
  try {
    return inputs.map((ids) => referenceEmbedding(ref, ids));
  } finally {
    ref.close();
  }
}

function longInput(model: LlamaModel, length: number): number[] {
  const text = "BGE-M3 est un modèle d'embeddings multilingue. 多语言嵌入模型。 The quick brown fox jumps over the lazy dog. ";
  const ids: number[] = [0];
  for (let i = 0; ids.length < length - 1; i++)
    ids.push(...model.tokenize(`${text}${i} `));
  return [...ids.slice(0, length - 1), 2];
}

t.test("TINY (F32, real vocab) loads, tokenizes like XLM-R and matches the reference", async (t) => {
  const path = await testModel(TINY);
  const vocab = new GgufReader(path);
  const pieces = vocab.metadata.get("tokenizer.ggml.tokens") as string[];
  vocab.close();
  t.equal(pieces.length, 250002);
  t.same([pieces[0], pieces[1], pieces[2], pieces[3], pieces[250001]], ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]);

  const model = await (await llama()).loadModel({ modelPath: path });
  t.equal(model.tokens.bos, 0);
  t.equal(model.tokens.eos, 2);
  const hello = model.tokenize("Hello world");
  t.same(hello.map((id) => pieces[id]), ["▁Hello", "▁world"], "pieces of the ids");
  t.same(hello, [35378, 8999], "XLM-R: <s> Hello world </s> = [0, 35378, 8999, 2]");
  t.same(model.tokenize("Ｈｅｌｌｏ　ｗｏｒｌｄ"), hello, "precompiled_charsmap normalises full-width text");
  const fox = model.tokenize("The quick brown fox jumps over the lazy dog.");
  t.equal(fox.map((id) => pieces[id]).join(""), "▁The▁quick▁brown▁fox▁jumps▁over▁the▁lazy▁dog.");
  t.same(fox, [581, 63773, 119455, 6, 147797, 88203, 7, 645, 70, 21, 3285, 10269, 5]);
  const short = [0, ...hello, 2];
  const long = longInput(model, 1500);
  const [eShort, eLong] = await embedWith(model, [short, long], 2048).finally(() => model.dispose());

  const started = performance.now();
  const [refShort, refLong] = referenceEmbeddings(path, [short, long]);
  t.comment(`reference forward pass: ${((performance.now() - started) / 1000).toFixed(1)} s for ${short.length} + ${long.length} tokens`);
  const cShort = cosine(eShort, refShort), cLong = cosine(eLong, refLong);
  t.comment(`F32 cosine vs reference: short ${cShort.toFixed(8)}, 1500 tokens ${cLong.toFixed(8)}`);
  t.ok(cShort >= 0.9999, `short input cosine ${cShort}`);
  t.ok(cLong >= 0.9999, `1500-token input cosine ${cLong}`);
  t.ok(cosine(eShort, eLong) < 0.99, "different inputs give different vectors");
});

/** Random ids below `vocabSize` wrapped in <s> ... </s>. */
function randomInputs(vocabSize: number, lengths: number[], seed = 7): number[][] {
  let s = seed;
  const next = (): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8;
  return lengths.map((n) => [0, ...Array.from({ length: n - 2 }, () => 5 + next() % (vocabSize - 6)), 2]);
}

// Measured on this generator (seed 1): cosine of llama.cpp vs the F32 source's
// reference and vs the reference run on the file's own dequantised weights.
// (inputs of 4, 40 and 300 tokens; the shortest is the least stable):
//   TINY   f16     source 1.000000           own 1.000000
//   TINY   q8_0    source 0.99987..0.99995   own 0.99995..0.99997
//   TINY_K q8_0    source 0.99992..0.99995   own 0.99996..0.99998
//   TINY_K q4_k_m  source 0.9922..0.9959     own 0.99993..0.99996
const quantCases: { label: string, source: BgeM3Options, file: BgeM3Options, minSource: number, minOwn: number }[] = [
  { label: "TINY f16", source: TINY, file: { ...TINY, fileType: "f16" }, minSource: 0.99995, minOwn: 0.99995 },
  { label: "TINY q8_0", source: TINY, file: { ...TINY, fileType: "q8_0" }, minSource: 0.999, minOwn: 0.9995 },
  { label: "TINY_K q8_0", source: { ...TINY_K, vocab: 4096 }, file: { ...TINY_K, vocab: 4096, fileType: "q8_0" }, minSource: 0.999, minOwn: 0.9995 },
  { label: "TINY_K q4_k_m", source: { ...TINY_K, vocab: 4096 }, file: { ...TINY_K, vocab: 4096, fileType: "q4_k_m" }, minSource: 0.985, minOwn: 0.9995 }
];

for (const c of quantCases)
  t.test(`${c.label} loads and stays close to the F32 reference`, async (t) => {
    const [sourcePath, path] = [await testModel(c.source), await testModel(c.file)];
    const inputs = randomInputs(c.file.vocab === "real" ? 250002 : Number(c.file.vocab), [4, 40, 300]);
    const got = await llamaEmbeddings(path, inputs);
    const fromSource = referenceEmbeddings(sourcePath, inputs);
    const fromOwn = referenceEmbeddings(path, inputs);
    const cs = got.map((e, i) => cosine(e, fromSource[i]));
    const co = got.map((e, i) => cosine(e, fromOwn[i]));
    t.comment(`${c.label}: vs F32 source ${cs.map((x) => x.toFixed(6)).join(", ")}; vs own weights ${co.map((x) => x.toFixed(6)).join(", ")}`);
    t.ok(Math.min(...cs) >= c.minSource, `vs source >= ${c.minSource}`);
    t.ok(Math.min(...co) >= c.minOwn, `vs own dequantised weights >= ${c.minOwn}`);
  });

t.test("quantized files hold the F32 file's weights (same seed) within each type's error", async (t) => {
  const source = new GgufReader(await testModel({ ...TINY_K, vocab: 4096 }));
  const quant = new GgufReader(await testModel({ ...TINY_K, vocab: 4096, fileType: "q4_k_m" }));
  const q8 = new GgufReader(await testModel({ ...TINY_K, vocab: 4096, fileType: "q8_0" }));
  t.teardown(() => [source, quant, q8].forEach((r) => r.close()));
  // Gaussian weights: measured Q8_0 0.51 %, Q6_K 1.7 %, Q4_K 6.9 % relative RMS error
  const limits: Record<number, number> = { [GGML_Q8_0]: 0.006, [GGML_Q6_K]: 0.025, [GGML_Q4_K]: 0.09, 0: 0 };
  for (const [reader, names] of [
    [quant, ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_v.weight", "blk.1.attn_v.weight", "blk.1.ffn_down.weight", "blk.0.ffn_up.bias", "position_embd.weight"]],
    [q8, ["token_embd.weight", "blk.1.ffn_down.weight"]]
  ] as const)
    for (const name of names) {
      const a = source.floats(name), b = reader.floats(name);
      let err = 0, ref = 0;
      for (let i = 0; i < a.length; i++) {
        err += (a[i] - b[i]) ** 2;
        ref += a[i] ** 2;
      }
      const type = reader.tensor(name).type;
      const rel = Math.sqrt(err / ref);
      t.ok(rel <= limits[type], `${name} (type ${type}): relative RMS error ${rel.toFixed(4)}`);
    }

  // what llama-quantize would write from the F32 file, including the pooled token_embd
  const requantized: [GgufReader, string, (x: Float32Array) => Uint8Array][] = [
    [quant, "token_embd.weight", quantizeQ6_K],
    [quant, "blk.0.attn_q.weight", quantizeQ4_K],
    [quant, "blk.1.ffn_down.weight", quantizeQ6_K],
    [q8, "token_embd.weight", quantizeQ8_0]
  ];
  for (const [reader, name, quantizeFn] of requantized)
    t.equal(sha256(quantizeFn(source.floats(name))), sha256(reader.rawBytes(name)), `${name} = quantize(F32 file's ${name})`);
});
