import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import { headsFromStateDicts, readHeadsDirectory, readStateDictFile } from "../src/model/heads/heads.js";
import { readStateDict } from "../src/model/heads/state-dict.js";
import { fp16BitsToFp32, fp32ToFp16Bits } from "../scripts/gguf/quantize.js";
import { writeRandomHeads } from "../scripts/heads/random-heads.js";
import { encodeStateDict } from "../scripts/heads/state-dict-writer.js";

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "heads");
const fixture = (name: string): string => path.join(fixtures, name);

/** What torch.load read from each fixture (make-fixtures.py), independent of our reader. */
interface Expected {
  readonly width: number;
  readonly files: Record<string, Record<string, { dtype: string; shape: number[]; values: number[] }>>;
}
const expected = JSON.parse(await readFile(fixture("expected.json"), "utf8")) as Expected;
const DTYPES: Record<string, string> = { float16: "f16", bfloat16: "bf16", float32: "f32" };

t.test("torch.save fixtures read to torch's exact values (fp16, bf16, fp32, offset views, deflated)", async (t) => {
  for (const [file, tensors] of Object.entries(expected.files)) {
    const dict = await readStateDictFile(fixture(file));
    t.same([...dict.keys()], Object.keys(tensors), `${file}: keys in order`);
    for (const [name, want] of Object.entries(tensors)) {
      const tensor = dict.get(name)!;
      t.equal(tensor.dtype, DTYPES[want.dtype], `${file} ${name} dtype`);
      t.same(tensor.shape, want.shape, `${file} ${name} shape`);
      // every fp16/bf16/fp32 value is a float32, so widening is exact: compare bit for bit
      t.same(Array.from(tensor.data), want.values, `${file} ${name} values`);
    }
  }
});

t.test("the heads of a torch-saved pair, shapes checked", async (t) => {
  for (const dtype of ["f16", "bf16", "f32"]) {
    const heads = await readHeadsDirectory(fixture(dtype), expected.width);
    const sparse = expected.files[`${dtype}/sparse_linear.pt`];
    const colbert = expected.files[`${dtype}/colbert_linear.pt`];
    t.equal(heads.hiddenSize, expected.width);
    t.equal(heads.colbert.outputSize, expected.width);
    t.same(Array.from(heads.sparse.weight), sparse.weight.values, dtype);
    t.equal(heads.sparse.bias, sparse.bias.values[0]);
    t.same(Array.from(heads.colbert.weight), colbert.weight.values, "row-major [output][hidden]");
    t.same(Array.from(heads.colbert.bias), colbert.bias.values);
  }
});

t.test("shapes that do not fit are refused naming the file and the shape", async (t) => {
  const sparseFile = fixture("f16/sparse_linear.pt");
  const colbertFile = fixture("f16/colbert_linear.pt");
  await t.rejects(readHeadsDirectory(fixture("f16"), 1024), {
    message: `${sparseFile}: weight has shape [1, 8], expected [1, 1024] (the model's hidden size)`,
  });
  const sparse = await readStateDictFile(sparseFile);
  const colbert = await readStateDictFile(colbertFile);
  t.throws(() => headsFromStateDicts(colbertFile, colbert, sparseFile, sparse), {
    message: `${colbertFile}: weight has shape [8, 8], expected [1, hidden size]`,
  });
  const narrow = await readStateDictFile(fixture("offset-view.pt"));
  const wrongBias = new Map([...colbert, ["bias", narrow.get("bias")!]]);
  t.throws(() => headsFromStateDicts(sparseFile, sparse, colbertFile, wrongBias), {
    message: `${colbertFile}: bias has shape [1], expected [8]`,
  });
  const extra = new Map([...sparse, ["scale", narrow.get("bias")!]]);
  t.throws(() => headsFromStateDicts(sparseFile, extra, colbertFile, colbert), /expected the state dict of a Linear layer \(weight, bias\), found keys bias, scale, weight/);
});

t.test("malicious pickles are refused without being run", async (t) => {
  await t.rejects(readStateDictFile(fixture("malicious-os-system.pt")), /refused: the pickle names the global os\.system.*the file was not executed/);
  await t.rejects(readStateDictFile(fixture("malicious-eval.pt")), /refused: the pickle names the global builtins\.eval/);
  await t.rejects(readStateDictFile(fixture("malicious-inst.pt")), /refused: pickle opcode INST \(0x69\) at byte 9/);
  await t.rejects(readStateDictFile(fixture("long-tensor.pt")), /global torch\.LongStorage/, "int64 tensors are not heads");
});

t.test("files that are not a plain zip state dict are refused clearly", async (t) => {
  await t.rejects(readStateDictFile(fixture("legacy.pt")), /legacy \(pre-1\.6, non-zip\) torch\.save file; only the zip format is read/);
  await t.rejects(readStateDictFile(fixture("transposed.pt")), /tensor weight is a non-contiguous view \(shape \[4, 8\], strides \[1, 4\]\)/);
  await t.rejects(readStateDictFile(fixture("not-a-state-dict.pt")), /does not hold a state dict/);
  await t.rejects(readStateDictFile(fixture("missing.pt")), /missing\.pt not found/);
  t.throws(() => readStateDict(Buffer.from("GGUF and then some")), /is not a torch.save zip file/);
  const good = await readFile(fixture("f16/colbert_linear.pt"));
  t.throws(() => readStateDict(good.subarray(0, good.length - 200)), /not a zip archive|damaged|outside the file/, "truncated");
  const flipped = Buffer.from(good);
  // storage 0 (128 bytes of fp16) ends just before the local header of storage 1
  const inStorage0 = flipped.indexOf("colbert_linear/data/1") - 100;
  t.ok(inStorage0 > flipped.indexOf("colbert_linear/data/0"), "the flipped byte is storage 0's");
  flipped[inStorage0] ^= 0xff;
  t.throws(() => readStateDict(flipped), /fails its CRC-32 check/);
  const zip64 = Buffer.from(good);
  zip64.writeUInt32LE(0xffffffff, zip64.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06])) + 16); // central directory offset
  t.throws(() => readStateDict(zip64), /is a ZIP64 archive, which this reader does not take/);
});

t.test("the writer's files read back to what was written", async (t) => {
  const values = [0, -0, 1.5, -2.25, 65504, 1e-7, 6.1e-5, 0.1, 1 / 3, -1e-3, 7, 2 ** -24];
  const tensors = new Map([
    ["weight", { shape: [3, 4], data: values }],
    ["bias", { shape: [3], data: [0.5, -0.5, 1e-30] }],
  ]);
  const f32 = readStateDict(encodeStateDict(tensors, "f32", "x"));
  t.same(Array.from(f32.get("weight")!.data), values.map(Math.fround), "fp32: exact");
  t.same(f32.get("weight")!.shape, [3, 4]);
  const f16 = readStateDict(encodeStateDict(tensors, "f16", "x"));
  t.same(Array.from(f16.get("weight")!.data), values.map((v) => fp16BitsToFp32(fp32ToFp16Bits(v))), "fp16: rounded to nearest half");
  t.same(Array.from(f16.get("bias")!.data), [0.5, -0.5, 0], "below the smallest half: zero");
  t.equal(f16.get("bias")!.dtype, "f16");

  const dir = await mkdtemp(path.join(tmpdir(), "bge-m3-heads-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeRandomHeads(path.join(dir, "w16"), { width: 16, dtype: "f32", seed: 7 });
  const heads = await readHeadsDirectory(path.join(dir, "w16"), 16);
  t.equal(heads.hiddenSize, 16);
  t.equal(heads.colbert.outputSize, 16);
  t.equal(heads.colbert.weight.length, 256);
  const bound = 1 / Math.sqrt(16);
  t.ok(heads.colbert.weight.every((w) => Math.abs(w) <= bound), "like nn.Linear's init: |w| <= 1/sqrt(width)");
  t.ok(new Set(heads.colbert.weight).size > 200, "random, not constant");
  await writeRandomHeads(path.join(dir, "again"), { width: 16, dtype: "f32", seed: 7 });
  t.same(await readHeadsDirectory(path.join(dir, "again")), heads, "seeded: the same seed gives the same heads");

  // a sparse head of one width beside a ColBERT head of another
  await writeRandomHeads(path.join(dir, "w8"), { width: 8, dtype: "f16" });
  const colbertFile = path.join(dir, "w8", "colbert_linear.pt");
  const sparse16 = await readStateDictFile(path.join(dir, "w16", "sparse_linear.pt"));
  t.throws(() => headsFromStateDicts("sparse_linear.pt", sparse16, colbertFile, readStateDict(readFileSync(colbertFile))), {
    message: `${colbertFile}: weight has shape [8, 8], expected [output size, 16]`,
  });
});
