/**
 * `npm run fetch-model`: resolves EMBEDDING_MODEL into MODEL_DIR (downloading it if needed) and checks
 * it, then the sparse and ColBERT heads (M3_HEADS), without starting the server. Used to bake the model
 * into an image at build time, or on a machine that reaches the hub, to copy MODEL_DIR to one that
 * does not (README, "No access to the hub?").
 */
import { ConfigError, loadConfig } from "../src/config/load.js";
import { ModelError } from "../src/model/errors.js";
import { prepareHeads } from "../src/model/heads/prepare.js";
import { prepareModel } from "../src/model/prepare.js";
import { downloadLines } from "../src/model/progress.js";

try {
  const config = loadConfig();
  const onEvent = downloadLines((event, line) => (event.type === "retry" ? process.stderr : process.stdout).write(`${line}\n`));
  const { path: file, facts } = await prepareModel(config.embeddingModel, { modelDir: config.modelDir, hub: config.hub, download: config.download, onEvent });
  process.stdout.write(`${file}: ${facts.layers} layers, ${facts.embeddingLength} dimensions, context ${facts.contextLength}\n`);
  // the heads are optional: without them the server serves dense vectors, so their failure is a warning
  const heads = await prepareHeads(config.m3Heads, { modelDir: config.modelDir, hub: config.hub, download: config.download, expectedHiddenSize: facts.embeddingLength, onEvent });
  if (heads.available) process.stdout.write(`sparse and ColBERT heads: ${heads.source}\n`);
  else process.stderr.write(`warning: sparse and ColBERT heads unavailable: ${heads.reason}\n`);
} catch (error) {
  if (!(error instanceof ConfigError || error instanceof ModelError)) throw error;
  process.stderr.write(`error: ${error.message}\n`);
  process.exit(1);
}
