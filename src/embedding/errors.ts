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

/** The request asks for an output (sparse, ColBERT, hidden states) this server cannot give: `reason` says why. */
export class OutputUnavailableError extends Error {
  override name = "OutputUnavailableError";
  constructor(
    readonly output: "sparse" | "colbert" | "hidden",
    readonly reason: string,
  ) {
    const what = { sparse: "Sparse outputs", colbert: "ColBERT outputs", hidden: "The last hidden states" }[output];
    super(`${what} are not available on this server: ${reason}.`);
  }
}

/** Not now: the server is at capacity (its queue, or the memory its answers may hold); retry shortly. */
export class CapacityError extends Error {
  override name = "CapacityError";
}

/** Accepted work was not finished in time (REQUEST_TIMEOUT_MS). */
export class RequestTimeoutError extends Error {
  override name = "RequestTimeoutError";
  constructor(readonly timeoutMs: number) {
    super(`request timed out after ${timeoutMs} ms`);
  }
}

/** The server is shutting down and takes no new work. */
export class ShuttingDownError extends Error {
  override name = "ShuttingDownError";
}

/** The client went away: its queued inputs were dropped and nobody is left to answer. */
export class ClientGoneError extends Error {
  override name = "ClientGoneError";
}
