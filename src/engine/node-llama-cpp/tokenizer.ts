import { Worker } from "node:worker_threads";

/** What the worker (tokenizer-worker.mjs) is sent and answers. */
export type TokenizerRequest =
  | { readonly id: number; readonly modelPath: string; readonly texts: readonly string[] }
  | { readonly forget: string };
export type TokenizerReply = { readonly id: number; readonly tokens: Uint32Array[] } | { readonly id: number; readonly error: string };

/**
 * Tokenizes with node-llama-cpp on one worker thread per process (tokenizer-worker.mjs), so the event
 * loop keeps serving while a large body is tokenized. Token ids come back with `<s>` first and `</s>`
 * last. The thread never keeps the process alive, and ends once no embedder uses it.
 */
class OffThreadTokenizer {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve(tokens: Uint32Array[]): void; reject(error: Error): void }>();
  private readonly worker = new Worker(new URL("./tokenizer-worker.mjs", import.meta.url));
  /** Embedders using each model's vocabulary (several servers in one test process share a file). */
  private readonly users = new Map<string, number>();

  constructor() {
    this.worker.on("message", (reply: TokenizerReply) => {
      const call = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      if (this.waiting.size === 0) this.worker.unref();
      if ("error" in reply) call?.reject(new Error(`tokenization failed: ${reply.error}`));
      else call?.resolve(reply.tokens);
    });
    this.worker.on("error", (error) => this.failAll(error));
    // idle, the thread never keeps the process alive (unref after the listeners: adding a "message"
    // listener refs the port again); a call in flight does, or the process would exit under it
    this.worker.unref();
  }

  tokenize(modelPath: string, texts: readonly string[]): Promise<Uint32Array[]> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.ref();
      this.post({ id, modelPath, texts });
    });
  }

  /** An embedder of this model starts using the thread (it loads the vocabulary on first use). */
  use(modelPath: string): void {
    this.users.set(modelPath, (this.users.get(modelPath) ?? 0) + 1);
  }

  /**
   * An embedder is done; the thread frees the vocabulary once nobody uses it. With no model left the
   * thread frees node-llama-cpp and ends (resolves then: a process exiting under a thread that still
   * holds node-llama-cpp aborts); the next user starts a new one.
   */
  async release(modelPath: string): Promise<void> {
    const left = (this.users.get(modelPath) ?? 1) - 1;
    if (left > 0) return void this.users.set(modelPath, left);
    this.users.delete(modelPath);
    const last = this.users.size === 0;
    if (last) this.worker.ref();
    const ended = last ? new Promise((resolve) => this.worker.once("exit", resolve)) : undefined;
    if (last && shared === this) shared = undefined;
    this.post({ forget: modelPath });
    await ended;
  }

  private post(request: TokenizerRequest): void {
    this.worker.postMessage(request);
  }

  private failAll(error: Error): void {
    this.worker.unref();
    for (const call of this.waiting.values()) call.reject(error);
    this.waiting.clear();
  }
}

let shared: OffThreadTokenizer | undefined;

/** The process's tokenizer thread, started on first use. */
export function offThreadTokenizer(): OffThreadTokenizer {
  shared ??= new OffThreadTokenizer();
  return shared;
}
