// BGE-M3's sparse and ColBERT heads and its scores in float64, written from FlagEmbedding's definitions
// (BGEM3FlagModel: _sparse_embedding, _colbert_embedding, compute_lexical_matching_score, colbert_score),
// independent of the server's code. Hidden states come from reference.ts.

export interface ReferenceHeads {
  readonly hiddenSize: number;
  readonly sparse: { readonly weight: ArrayLike<number>; readonly bias: number };
  readonly colbert: { readonly weight: ArrayLike<number>; readonly bias: ArrayLike<number>; readonly outputSize: number };
}

/** relu(w . h + b) per token; per id the largest weight; `dropped` ids (<s>, </s>, <pad>, <unk>) and weights <= 0 left out. */
export function referenceSparse(states: Float64Array, ids: readonly number[], heads: ReferenceHeads, dropped: ReadonlySet<number>): Map<number, number> {
  const n = heads.hiddenSize;
  const weights = new Map<number, number>();
  ids.forEach((id, t) => {
    let dot = heads.sparse.bias;
    for (let i = 0; i < n; i++) dot += heads.sparse.weight[i] * states[t * n + i];
    const w = Math.max(0, dot);
    if (dropped.has(id) || w <= 0) return;
    if (!weights.has(id) || w > weights.get(id)!) weights.set(id, w);
  });
  return weights;
}

/** colbert_linear of every token after the first, each scaled to unit length. */
export function referenceColbert(states: Float64Array, tokens: number, heads: ReferenceHeads): Float64Array[] {
  const n = heads.hiddenSize, m = heads.colbert.outputSize;
  const vectors: Float64Array[] = [];
  for (let t = 1; t < tokens; t++) {
    const v = new Float64Array(m);
    for (let o = 0; o < m; o++) {
      let dot = heads.colbert.bias[o];
      for (let i = 0; i < n; i++) dot += heads.colbert.weight[o * n + i] * states[t * n + i];
      v[o] = dot;
    }
    const norm = Math.max(Math.hypot(...v), 1e-12);
    vectors.push(v.map((x) => x / norm));
  }
  return vectors;
}

export function referenceSparseScore(q: Map<number, number>, d: Map<number, number>): number {
  let score = 0;
  for (const [id, w] of q) score += w * (d.get(id) ?? 0);
  return score;
}

export function referenceColbertScore(q: readonly Float64Array[], d: readonly Float64Array[]): number {
  let total = 0;
  for (const qv of q) {
    let best = -Infinity;
    for (const dv of d) {
      let dot = 0;
      for (let i = 0; i < qv.length; i++) dot += qv[i] * dv[i];
      best = Math.max(best, dot);
    }
    total += best;
  }
  return total / q.length;
}
