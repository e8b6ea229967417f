// Patch 0011 (native/src/token_rows.h): the token-embedding rows a batch needs are read from the model file with
// pread into a small input of the table's own type, instead of get_rows on the table mapped from the file, which
// faults ~64 KB of the file into RSS around every row read. The vectors must be exactly those of llama.cpp's own
// lookup (load option tokenRowsFromFile: false) for every weight type and path, and a long input of scattered ids
// must leave the table out of the process's RSS.
import fs from "node:fs";
import os from "node:os";
import t from "tap";
import { NATIVE_COLBERT, NATIVE_SPARSE, type NativeEmbeddingModel, type NativeLoadOptions } from "../src/engine/native/addon-types.js";
import { nativeHeads } from "../src/engine/native/native-embedder.js";
import { GgufReader } from "./helpers/gguf-reader.js";
import { randomHeads } from "./helpers/heads.js";
import { TINY, TINY_K, testModel } from "./helpers/models.js";
import { nativeAddonOrSkip } from "./helpers/native.js";
import { seededUniform } from "./helpers/random.js";

const addon = nativeAddonOrSkip(t);

/** Index of the first element that differs (bit for bit: NaN never equals), -1 when none does. */
function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

/** Seeded uniform ids in [4, nVocab): past the specials, scattered over the whole table. */
function randomIds(count: number, nVocab: number, seed: number): Uint32Array {
  const next = seededUniform(seed);
  return Uint32Array.from({ length: count }, () => 4 + Math.floor(next() * (nVocab - 4)));
}

/** <s> ids </s>. */
function sequence(model: NativeEmbeddingModel, ids: ArrayLike<number>): Uint32Array {
  return Uint32Array.of(model.info.bosToken, ...Array.from(ids), model.info.eosToken);
}

if (addon) {
  const threads = Math.min(2, os.availableParallelism());
  const load = (modelPath: string, extra: Partial<NativeLoadOptions> = {}) =>
    addon.loadModel({ modelPath, contextSize: 8192, batchSize: 8192, sequences: 8, threads, ...extra });

  // F32, F16 and Q8_0 tables (TINY), and Q4_K_M's Q6_K table with Q4_K layers (TINY_K: K-quant rows need width 256)
  const files = [
    { label: "F32", options: TINY },
    { label: "F16", options: { ...TINY, fileType: "f16" as const } },
    { label: "Q8_0", options: { ...TINY, fileType: "q8_0" as const } },
    { label: "Q4_K_M", options: { ...TINY_K, fileType: "q4_k_m" as const } },
  ];
  for (const { label, options } of files) {
    t.test(`${label}: vectors identical to llama.cpp's own lookup, dense, long and with heads`, async (t) => {
      const modelPath = await testModel(options);
      const heads = nativeHeads(randomHeads(options.width!));
      const fromFile = await load(modelPath, { heads });
      const stock = await load(modelPath, { heads, tokenRowsFromFile: false });
      try {
        t.equal(fromFile.info.tokenRowsFromFile, true, "the rows come from the file");
        t.equal(stock.info.tokenRowsFromFile, false, "the stock lookup when asked");
        const { nVocab } = fromFile.info;
        const texts = await fromFile.tokenize(["The quick brown fox jumps over the lazy dog.", "a", "BGE-M3 est multilingue. 多语言嵌入模型。"]);
        const batch = [
          ...texts,
          // the same id repeated and shared between sequences, runs of consecutive ids, the table's first and last rows
          sequence(fromFile, [7, 7, 100, 101, 102, 7, nVocab - 1, nVocab - 2, 0, 1, 2, 3]),
          sequence(fromFile, randomIds(300, nVocab, 1)),
        ];
        t.equal(firstDifference(await fromFile.embed(batch), await stock.embed(batch)), -1, "a batch of several sequences");
        const long = [sequence(fromFile, randomIds(4000, nVocab, 2))];
        t.equal(firstDifference(await fromFile.embed(long), await stock.embed(long)), -1, "one 4,002-token input");

        const outputs = Uint8Array.of(NATIVE_SPARSE | NATIVE_COLBERT, NATIVE_SPARSE, NATIVE_COLBERT, 0, NATIVE_SPARSE | NATIVE_COLBERT);
        const a = await fromFile.embedWithHeads(batch, outputs);
        const b = await stock.embedWithHeads(batch, outputs);
        t.equal(firstDifference(a.pooled, b.pooled), -1, "heads path: pooled vectors");
        a.sparse.forEach((sparse, i) => {
          t.equal(firstDifference(sparse?.indices ?? [], b.sparse[i]?.indices ?? []), -1, `sequence ${i}: sparse ids`);
          t.equal(firstDifference(sparse?.values ?? [], b.sparse[i]?.values ?? []), -1, `sequence ${i}: sparse weights`);
          t.equal(firstDifference(a.colbert[i] ?? [], b.colbert[i] ?? []), -1, `sequence ${i}: ColBERT vectors`);
        });
        t.ok(a.sparse[0]!.indices.length > 0 && a.colbert[0]!.length > 0, "the heads gave outputs to compare");
      } finally {
        await fromFile.dispose();
        await stock.dispose();
      }
    });
  }

  t.test("an 8k-token input of scattered ids leaves the token embeddings out of RSS",
    { skip: fs.existsSync("/proc/self/smaps") ? false : "needs Linux's /proc/self/smaps" }, async (t) => {
      // smaps names the file by its real path (.cache may be a link, as in a git worktree)
      const modelPath = fs.realpathSync(await testModel(TINY));
      const reader = new GgufReader(modelPath);
      const tableBytes = reader.byteLength(reader.tensor("token_embd.weight"));
      reader.close();
      /** kB of the model file resident in this process, after one 8,190-token input of uniformly random ids. */
      const residentAfterLongInput = async (extra: Partial<NativeLoadOptions>) => {
        const model = await load(modelPath, extra);
        try {
          await model.embed([sequence(model, randomIds(8188, model.info.nVocab, 3))]);
          return fs.readFileSync("/proc/self/smaps", "utf8").split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)
            .filter((mapping) => mapping.split("\n")[0].endsWith(` ${modelPath}`))
            .reduce((sum, mapping) => sum + Number(/^Rss:\s+(\d+) kB/m.exec(mapping)?.[1] ?? 0), 0);
        } finally {
          await model.dispose();
        }
      };
      const fromFile = await residentAfterLongInput({});
      // the table is 64 MB here; the rest of the file the input reads in place (position embeddings, norms) ~2 MB
      t.ok(fromFile * 1024 < tableBytes / 10, `rows read from the file: ${fromFile} kB of the file resident (token_embd: ${tableBytes >> 10} kB)`);
      // the measurement sees what get_rows on the mapping faults in (~64 KB around each row; at least the row's
      // 4 KB page, 41% of the table's pages for these ids, where the kernel maps no more)
      const stock = await residentAfterLongInput({ tokenRowsFromFile: false });
      t.ok(stock * 1024 > tableBytes / 4, `llama.cpp's own lookup: ${stock} kB of the file resident`);
    });
}
