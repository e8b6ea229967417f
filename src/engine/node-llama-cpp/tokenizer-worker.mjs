// The node-llama-cpp engine's tokenizer, on its own worker thread: node-llama-cpp tokenizes
// synchronously on the calling thread, and a 64 MiB body would stall the event loop for seconds.
// One thread per process serves every model: it loads each model's vocabulary only (no weights) on
// first use and frees it when told. Plain JavaScript, so it runs under any loader (tsx, tap) without
// one of its own; the protocol is typed in tokenizer.ts.
import { parentPort } from "node:worker_threads";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const llama = getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error, progressLogs: false });
/** modelPath -> Promise of its vocabulary-only model */
const vocabularies = new Map();

async function vocabulary(modelPath) {
  let model = vocabularies.get(modelPath);
  if (model === undefined) {
    model = llama.then((l) => l.loadModel({ modelPath, vocabOnly: true }));
    vocabularies.set(modelPath, model);
    model.catch(() => vocabularies.delete(modelPath));
  }
  return model;
}

async function tokenize(modelPath, texts) {
  const model = await vocabulary(modelPath);
  const { bos, eos } = model.tokens;
  if (bos === null || eos === null) throw new Error("the model's vocabulary has no <s> or </s> token");
  return texts.map((text) => {
    const pieces = model.tokenize(text, false);
    const sequence = new Uint32Array(pieces.length + 2);
    sequence[0] = bos;
    sequence.set(pieces, 1);
    sequence[pieces.length + 1] = eos;
    return sequence;
  });
}

parentPort.on("message", async (request) => {
  if (request.forget !== undefined) {
    const model = vocabularies.get(request.forget);
    vocabularies.delete(request.forget);
    await model?.then((m) => m.dispose(), () => undefined);
    if (vocabularies.size === 0) {
      // nobody needs the thread: free node-llama-cpp here, then end (a thread torn down with a live
      // Llama aborts the process)
      await llama.then((l) => l.dispose(), () => undefined);
      parentPort.close();
    }
    return;
  }
  try {
    const tokens = await tokenize(request.modelPath, request.texts);
    parentPort.postMessage({ id: request.id, tokens }, tokens.map((sequence) => sequence.buffer));
  } catch (error) {
    parentPort.postMessage({ id: request.id, error: error.message });
  }
});
