/** Start-up failures of an engine that the user can act on; main prints the message alone. */
export class DeviceUnavailableError extends Error {
  override name = "DeviceUnavailableError";
}

export class EngineUnavailableError extends Error {
  override name = "EngineUnavailableError";
}

/** An engine batch stopped because its signal aborted (every request that wanted it is gone). */
export class EmbedCancelledError extends Error {
  override name = "EmbedCancelledError";
}
