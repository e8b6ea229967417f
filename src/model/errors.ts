/** The model file is missing, broken, of the wrong kind, or could not be downloaded. */
export class ModelError extends Error {
  override name = "ModelError";
}
