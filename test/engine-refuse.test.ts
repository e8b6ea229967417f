// ENGINE=native (the images' setting) must stop with the addon loader's reason when the addon cannot
// load, never fall back to node-llama-cpp (whose binaries the images do not ship). The loader is
// replaced so this holds on machines where the addon is built. npm run pack-check checks the same
// end to end on an installed package.
import t from "tap";
import type { CreateEmbedderOptions } from "../src/engine/create.js";

const loaderError = "/app/native/build/Release/bge_m3_native.node: libggml-base.so: cannot open shared object file";

t.test("ENGINE=native refuses with the loader's reason", async (t) => {
  const { createEmbedder } = await t.mockImport<typeof import("../src/engine/create.js")>("../src/engine/create.js", {
    "../src/engine/native/load-addon.js": { isNativeAddonAvailable: () => false, nativeAddonLoadError: () => loaderError },
  });
  const fellBack: string[] = [];
  const options = { engine: "native", onFallback: (reason: string) => fellBack.push(reason) } as unknown as CreateEmbedderOptions;
  await t.rejects(createEmbedder(options), {
    name: "EngineUnavailableError",
    message: `ENGINE=native but the native addon cannot be loaded: ${loaderError}`,
  });
  t.same(fellBack, [], "no fall-back announced");
});
