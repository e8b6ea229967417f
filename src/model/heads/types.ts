/** The two extra heads of BGE-M3, read from `sparse_linear.pt` and `colbert_linear.pt`. */
export interface M3Heads {
  /** Width of the hidden states the heads read (1024 for BGE-M3). */
  readonly hiddenSize: number;
  /** sparse_linear: one weight per hidden unit and a scalar bias. */
  readonly sparse: { readonly weight: Float32Array; readonly bias: number };
  /** colbert_linear: weight row-major [outputSize][hiddenSize], bias [outputSize]. */
  readonly colbert: { readonly weight: Float32Array; readonly bias: Float32Array; readonly outputSize: number };
}

export type HeadsState =
  | { readonly available: true; readonly heads: M3Heads; readonly source: string }
  | { readonly available: false; readonly reason: string };
