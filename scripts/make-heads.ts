// Writes BGE-M3-shaped sparse and ColBERT heads (seeded random weights) as torch.save files, for
// tests and benchmarks; see scripts/heads/random-heads.ts.
//   npm run make-heads -- --width 1024 --out models/heads [--dtype f16|f32] [--seed 1]
import { parseArgs } from "node:util";
import { writeRandomHeads } from "./heads/random-heads.js";

const usage = "usage: make-heads.ts --width N --out DIR [--dtype f16|f32] [--seed S]";

function integer(name: string, value: string, minimum: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < minimum) throw new Error(`--${name} must be an integer of at least ${minimum}, got ${value}`);
  return n;
}

const { values } = parseArgs({
  options: {
    width: { type: "string" },
    out: { type: "string" },
    dtype: { type: "string", default: "f16" },
    seed: { type: "string", default: "1" },
    help: { type: "boolean", short: "h" },
  },
  strict: true,
});
if (values.help || values.width === undefined || values.out === undefined) {
  console.error(usage);
  process.exit(values.help ? 0 : 2);
}
if (values.dtype !== "f16" && values.dtype !== "f32") throw new Error(`--dtype must be f16 or f32, got ${values.dtype}`);
const files = await writeRandomHeads(values.out, {
  width: integer("width", values.width, 1),
  dtype: values.dtype,
  seed: integer("seed", values.seed, 0),
});
console.log(`wrote ${files.sparse} and ${files.colbert}`);
