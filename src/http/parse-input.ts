import { InputError } from "../embedding/errors.js";
import type { EmbeddingInput } from "../embedding/pipeline.js";
import type { EmbeddingsBodyType } from "./schemas.js";

/**
 * Turns the schema-checked `input` into one entry per input, with the OpenAI-style name of each
 * (`input` for a single one, `input[3]` in a list) for error messages; `name` is the body field.
 */
export function parseInput(input: EmbeddingsBodyType["input"], maxInputs: number, name = "input"): EmbeddingInput[] {
  if (typeof input === "string") return [textInput(input, name)];
  if (input.length === 0) throw new InputError(`'${name}' must not be an empty array.`, name, "empty_input");
  if (typeof input[0] === "number") return [tokenInput(input as number[], name)];
  if (input.length > maxInputs) {
    throw new InputError(`'${name}' has ${input.length} items; at most ${maxInputs} are allowed per request.`, name, "too_many_inputs");
  }
  return (input as (string | number[])[]).map((item, i) =>
    typeof item === "string" ? textInput(item, `${name}[${i}]`) : tokenInput(item, `${name}[${i}]`),
  );
}

/** The requested length of dense vectors (`requested`, absent: the model's), at most the model's. */
export function dimensionsOf(requested: number | null | undefined, modelDimensions: number, param = "dimensions"): number {
  const dimensions = requested ?? modelDimensions;
  if (dimensions > modelDimensions) {
    throw new InputError(`Invalid '${param}': ${dimensions} is more than the model's ${modelDimensions}.`, param, "invalid_value");
  }
  return dimensions;
}

export function textInput(text: string, param: string): EmbeddingInput {
  if (text.length === 0) throw new InputError(`'${param}' must not be an empty string.`, param, "empty_input");
  return { kind: "text", text, param };
}

function tokenInput(tokens: number[], param: string): EmbeddingInput {
  if (tokens.length === 0) throw new InputError(`'${param}' must not be an empty token list.`, param, "empty_input");
  return { kind: "tokens", tokens, param };
}

/** text-embeddings-inference's truncation fields as the pipeline's: `truncate` (absent or null: the server's default) and which end is cut. */
export function teiTruncation(defaultTruncate: boolean, body: { truncate?: boolean | null; truncation_direction?: string }) {
  return {
    truncate: body.truncate ?? defaultTruncate,
    truncateFrom: body.truncation_direction?.toLowerCase() === "left" ? ("start" as const) : ("end" as const),
  };
}
