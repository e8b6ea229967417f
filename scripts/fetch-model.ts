/**
 * `npm run fetch-model`: resolves EMBEDDING_MODEL into MODEL_DIR (downloading it if needed) and checks
 * it, without starting the server. Used to bake the model into an image at build time.
 */
import { ConfigError, loadConfig } from "../src/config/load.js";
import { ModelError } from "../src/model/errors.js";
import { prepareModel } from "../src/model/prepare.js";

try {
  const config = loadConfig();
  const { path: file, facts } = await prepareModel(config.embeddingModel, {
    modelDir: config.modelDir,
    hub: config.hub,
    report: (percent) => process.stdout.write(`downloading: ${percent}%\n`),
  });
  process.stdout.write(`${file}: ${facts.layers} layers, ${facts.embeddingLength} dimensions, context ${facts.contextLength}\n`);
} catch (error) {
  if (!(error instanceof ConfigError || error instanceof ModelError)) throw error;
  process.stderr.write(`error: ${error.message}\n`);
  process.exit(1);
}
