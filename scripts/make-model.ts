// Generates a synthetic BGE-M3-shaped GGUF (see scripts/gguf/bge-m3.ts).
//   npx tsx scripts/make-model.ts --out models/x.gguf --preset full --type q8_0
//   npx tsx scripts/make-model.ts --out models/x.gguf --layers 24 --width 1024 --heads 16 --ffn 4096 --ctx 8192 --type q4_k_m [--vocab real|N] [--seed 1]
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { BgeM3FileType, BgeM3Init, BgeM3Options, bgeM3FullSize, writeBgeM3Gguf } from "./gguf/bge-m3.js";

const presets: Record<string, BgeM3Options> = {
  full: bgeM3FullSize,
  // mirrors test/helpers/models.ts TINY
  tiny: { layers: 2, width: 64, heads: 4, ffn: 128, contextLength: 8192, vocab: "real" }
};

const usage = `usage: make-model.ts --out FILE [--preset full|tiny] [--type f32|f16|q8_0|q4_k_m] [--init fan-in|bert]
  [--layers N] [--width N] [--heads N] [--ffn N] [--ctx N] [--vocab real|N] [--seed N]`;

function integer(name: string, value: string | undefined): number | undefined {
  if (value === undefined)
    return undefined;
  const n = Number(value);
  if (!Number.isInteger(n))
    throw new Error(`--${name} must be an integer, got ${value}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: "string" },
      preset: { type: "string" },
      type: { type: "string", default: "f32" },
      init: { type: "string" },
      layers: { type: "string" },
      width: { type: "string" },
      heads: { type: "string" },
      ffn: { type: "string" },
      ctx: { type: "string" },
      vocab: { type: "string" },
      seed: { type: "string" },
      help: { type: "boolean", short: "h" }
    },
    strict: true
  });
  if (values.help || values.out === undefined) {
    console.error(usage);
    process.exit(values.help ? 0 : 2);
  }
  const preset = values.preset === undefined ? {} : presets[values.preset];
  if (preset === undefined)
    throw new Error(`unknown preset ${values.preset}; known: ${Object.keys(presets).join(", ")}`);

  const vocab = values.vocab === undefined || values.vocab === "real" ? values.vocab : integer("vocab", values.vocab);
  const options: BgeM3Options = {
    ...preset,
    ...Object.fromEntries(Object.entries({
      layers: integer("layers", values.layers),
      width: integer("width", values.width),
      heads: integer("heads", values.heads),
      ffn: integer("ffn", values.ffn),
      contextLength: integer("ctx", values.ctx),
      vocab,
      seed: integer("seed", values.seed)
    }).filter(([, v]) => v !== undefined)),
    fileType: values.type as BgeM3FileType,
    init: values.init as BgeM3Init | undefined
  };

  mkdirSync(dirname(values.out), { recursive: true });
  const summary = await writeBgeM3Gguf({ ...options, out: values.out });
  const o = summary.options;
  console.log(`${summary.path}: ${o.fileType}, ${o.layers} layers, width ${o.width}, ${o.heads} heads, ffn ${o.ffn}, ` +
    `ctx ${o.contextLength}, vocab ${summary.vocabSize}, seed ${o.seed}; ` +
    `${(summary.bytes / 2 ** 20).toFixed(1)} MiB in ${summary.seconds.toFixed(1)} s`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
