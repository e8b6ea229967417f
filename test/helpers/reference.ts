// Independent float64 forward pass of the XLM-RoBERTa/BERT encoder as llama.cpp
// runs LLM_ARCH_BERT (src/models/bert.cpp), CLS pooled and L2-normalised.
// Weights come from a GGUF through test/helpers/gguf-reader.ts (dequantised when
// the file is quantised), never from the generator.
//
// GELU: bert.cpp uses LLM_FFN_GELU -> ggml_gelu, the tanh approximation (not erf).
// ggml's CPU backend additionally evaluates it through an fp16 lookup table
// (GGML_GELU_FP16); this reference uses the exact tanh formula.
import { GgufReader } from "./gguf-reader.js";
import { cachedReference, modelFileIdentity } from "./reference-cache.js";

type Layer = {
  q: Linear, k: Linear, v: Linear, o: Linear,
  attnNorm: Norm,
  up: Linear, down: Linear,
  outNorm: Norm
};
type Linear = { w: Float64Array, b: Float64Array, nIn: number, nOut: number };
type Norm = { w: Float64Array, b: Float64Array };

export type ReferenceModel = {
  /** the file's identity for the results cache (reference-cache.ts) */
  file: string,
  width: number,
  heads: number,
  eps: number,
  contextLength: number,
  vocabSize: number,
  /** token_embd rows are read on demand: the real vocab's table is large */
  tokenRows: (ids: readonly number[]) => Float32Array,
  positions: Float64Array,
  tokenType0: Float64Array,
  embNorm: Norm,
  layers: Layer[],
  close: () => void
};

const toF64 = (a: Float32Array): Float64Array => Float64Array.from(a);

export function loadReferenceModel(path: string): ReferenceModel {
  const r = new GgufReader(path);
  const num = (key: string): number => {
    const v = r.metadata.get(key);
    if (typeof v !== "number")
      throw new Error(`${path}: metadata ${key} missing`);
    return v;
  };
  if (r.metadata.get("general.architecture") !== "bert")
    throw new Error(`${path}: not a bert model`);
  const width = num("bert.embedding_length");
  const vec = (name: string): Float64Array => toF64(r.floats(name));
  const linear = (name: string): Linear => {
    const info = r.tensor(`${name}.weight`);
    return { w: vec(`${name}.weight`), b: vec(`${name}.bias`), nIn: info.dims[0], nOut: info.dims[1] };
  };
  const norm = (name: string): Norm => ({ w: vec(`${name}.weight`), b: vec(`${name}.bias`) });
  const layers: Layer[] = [];
  for (let i = 0; i < num("bert.block_count"); i++)
    layers.push({
      q: linear(`blk.${i}.attn_q`), k: linear(`blk.${i}.attn_k`), v: linear(`blk.${i}.attn_v`),
      o: linear(`blk.${i}.attn_output`),
      attnNorm: norm(`blk.${i}.attn_output_norm`),
      up: linear(`blk.${i}.ffn_up`), down: linear(`blk.${i}.ffn_down`),
      outNorm: norm(`blk.${i}.layer_output_norm`)
    });
  return {
    file: modelFileIdentity(path),
    width,
    heads: num("bert.attention.head_count"),
    eps: num("bert.attention.layer_norm_epsilon"),
    contextLength: num("bert.context_length"),
    vocabSize: r.tensor("token_embd.weight").dims[1],
    tokenRows: (ids) => r.rows("token_embd.weight", ids),
    positions: vec("position_embd.weight"),
    tokenType0: toF64(r.rows("token_types.weight", [0])),
    embNorm: norm("token_embd_norm"),
    layers,
    close: () => r.close()
  };
}

/** CLS embedding (L2-normalised) of a token-id list that already holds <s> ... </s>. */
export function referenceEmbedding(model: ReferenceModel, ids: readonly number[]): Float64Array {
  return cachedReference("cls", model.file, ids, () => {
    const n = model.width;
    // llama.cpp (inp_out_ids) may keep only the pooled row after the last
    // attention; the CLS row does not depend on other rows' outputs there.
    const cls = hiddenStates(model, ids, 1).slice(0, n);
    const norm = Math.hypot(...cls);
    for (let i = 0; i < n; i++)
      cls[i] /= norm;
    return cls;
  });
}

/** The encoder's last hidden states, one row of `width` per token (what BGE-M3's heads read). */
export function referenceHiddenStates(model: ReferenceModel, ids: readonly number[]): Float64Array {
  return cachedReference("states", model.file, ids, () => hiddenStates(model, ids, ids.length));
}

/** The first `lastRows` rows of the last layer's output. */
function hiddenStates(model: ReferenceModel, ids: readonly number[], lastRows: number): Float64Array {
  const n = model.width, T = ids.length;
  if (T === 0 || T > model.contextLength)
    throw new Error(`token count ${T} outside 1..${model.contextLength}`);
  for (const id of ids)
    if (!Number.isInteger(id) || id < 0 || id >= model.vocabSize)
      throw new Error(`token id ${id} outside the vocabulary`);

  // embeddings: token + position(i) + token type 0, then LayerNorm
  const tok = model.tokenRows(ids);
  let x: Float64Array = new Float64Array(T * n);
  for (let t = 0; t < T; t++)
    for (let i = 0; i < n; i++)
      x[t * n + i] = tok[t * n + i] + model.positions[t * n + i] + model.tokenType0[i];
  layerNorm(x, T, n, model.embNorm, model.eps);

  model.layers.forEach((layer, index) => {
    const last = index === model.layers.length - 1;
    x = encoderLayer(layer, x, T, last ? lastRows : T, n, model.heads, model.eps);
  });
  return x;
}

/** One post-LN BERT layer; returns the first `outRows` rows. */
function encoderLayer(layer: Layer, x: Float64Array, T: number, outRows: number, n: number, heads: number, eps: number): Float64Array {
  const q = matmul(layer.q, x, outRows);
  const k = matmul(layer.k, x, T);
  const v = matmul(layer.v, x, T);
  const hd = n / heads;
  const scale = 1 / Math.sqrt(hd);
  const ctx = new Float64Array(outRows * n);
  const scores = new Float64Array(T);
  // per head, K and V rows packed contiguously (hd values per token) and the query/output row in a
  // local buffer: the same sums in the same order as indexing x-wide rows, with far fewer cache misses
  const kh = new Float64Array(T * hd);
  const vh = new Float64Array(T * hd);
  const qt = new Float64Array(hd);
  const acc = new Float64Array(hd);
  for (let h = 0; h < heads; h++) {
    const off = h * hd;
    for (let s = 0; s < T; s++) {
      for (let d = 0; d < hd; d++) {
        kh[s * hd + d] = k[s * n + off + d];
        vh[s * hd + d] = v[s * n + off + d];
      }
    }
    for (let t = 0; t < outRows; t++) {
      for (let d = 0; d < hd; d++)
        qt[d] = q[t * n + off + d];
      let max = -Infinity;
      for (let s = 0; s < T; s++) {
        let dot = 0;
        const so = s * hd;
        for (let d = 0; d < hd; d++)
          dot += qt[d] * kh[so + d];
        scores[s] = dot * scale;
        if (scores[s] > max)
          max = scores[s];
      }
      let sum = 0;
      for (let s = 0; s < T; s++) {
        scores[s] = Math.exp(scores[s] - max);
        sum += scores[s];
      }
      acc.fill(0);
      for (let s = 0; s < T; s++) {
        const p = scores[s] / sum;
        const so = s * hd;
        for (let d = 0; d < hd; d++)
          acc[d] += p * vh[so + d];
      }
      for (let d = 0; d < hd; d++)
        ctx[t * n + off + d] = acc[d];
    }
  }
  const attn = matmul(layer.o, ctx, outRows);
  for (let i = 0; i < outRows * n; i++)
    attn[i] += x[i];
  layerNorm(attn, outRows, n, layer.attnNorm, eps);

  const up = matmul(layer.up, attn, outRows);
  for (let i = 0; i < up.length; i++)
    up[i] = geluTanh(up[i]);
  const out = matmul(layer.down, up, outRows);
  for (let i = 0; i < outRows * n; i++)
    out[i] += attn[i];
  layerNorm(out, outRows, n, layer.outNorm, eps);
  return out;
}

/** y[t] = W x[t] + b, with ggml's layout: nOut rows of nIn contiguous weights. */
function matmul(l: Linear, x: Float64Array, rows: number): Float64Array {
  const { w, b, nIn, nOut } = l;
  const y = new Float64Array(rows * nOut);
  for (let t = 0; t < rows; t++) {
    const xo = t * nIn;
    for (let j = 0; j < nOut; j++) {
      let acc = b[j];
      const wo = j * nIn;
      for (let i = 0; i < nIn; i++)
        acc += w[wo + i] * x[xo + i];
      y[t * nOut + j] = acc;
    }
  }
  return y;
}

/** ggml_norm (eps inside the sqrt) followed by weight and bias. */
function layerNorm(x: Float64Array, rows: number, n: number, norm: Norm, eps: number): void {
  for (let t = 0; t < rows; t++) {
    const o = t * n;
    let mean = 0;
    for (let i = 0; i < n; i++)
      mean += x[o + i];
    mean /= n;
    let variance = 0;
    for (let i = 0; i < n; i++)
      variance += (x[o + i] - mean) ** 2;
    variance /= n;
    const inv = 1 / Math.sqrt(variance + eps);
    for (let i = 0; i < n; i++)
      x[o + i] = (x[o + i] - mean) * inv * norm.w[i] + norm.b[i];
  }
}

/** One vector from a model file: loads the weights, runs the forward pass, frees them. */
export function referenceEmbed(path: string, ids: readonly number[]): Float64Array {
  const model = loadReferenceModel(path);
  try {
    return referenceEmbedding(model, ids);
  } finally {
    model.close();
  }
}

export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * x * (1 + 0.044715 * x * x)));
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length)
    throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return dot / Math.sqrt(na * nb);
}
