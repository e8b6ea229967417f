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
