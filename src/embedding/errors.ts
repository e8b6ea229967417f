/** A client's input the model cannot take; `param` names it the OpenAI way (`input[3]`). */
export class InputError extends Error {
  override name = "InputError";
  constructor(
    message: string,
    readonly param: string,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

/** The model produced NaN or Infinity for the input named by `param`; the vector was not sent. */
export class NonFiniteEmbeddingError extends Error {
  override name = "NonFiniteEmbeddingError";
  constructor(readonly param: string) {
    super(`The model produced a non-finite vector (NaN or Infinity) for '${param}'; it was not sent.`);
  }
}

/** The request asks for an output (sparse, ColBERT) this server cannot give: `reason` says why. */
export class OutputUnavailableError extends Error {
  override name = "OutputUnavailableError";
  constructor(
    readonly output: "sparse" | "colbert",
    readonly reason: string,
  ) {
    super(`${output === "sparse" ? "Sparse" : "ColBERT"} outputs are not available on this server: ${reason}.`);
  }
}
