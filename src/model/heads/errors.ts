/**
 * A heads file cannot be used: not a zip, not a plain state dict of tensors, a pickle we refuse, a
 * shape that does not fit, or a failed download. The message is one line, fit for `reason`.
 */
export class HeadsError extends Error {
  override name = "HeadsError";
}

/** M3_HEADS is not a value the server understands (caught at start, by config validation). */
export class HeadsSettingError extends Error {
  override name = "HeadsSettingError";
}
