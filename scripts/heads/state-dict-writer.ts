// Writes a state dict of fp16/fp32 tensors as a torch.save zip file (what torch.load reads), for
// tests and benchmarks of the heads reader. The layout is torch's: `<stem>/data.pkl` (protocol 2),
// `<stem>/data/<key>` little-endian storages aligned to 64 bytes, `byteorder`, `version`.
import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { fp32ToFp16Bits } from "../gguf/quantize.js";
import { pickleStateDict, type HeadsDtypeName } from "./pickle-writer.js";
import { ZIP_ALIGNMENT, zipStored } from "./zip-writer.js";

export type { HeadsDtypeName };

export interface TensorInput {
  readonly shape: readonly number[];
  /** Row-major values; rounded to nearest-even for f16. */
  readonly data: ArrayLike<number>;
}

function storageBytes(values: ArrayLike<number>, dtype: HeadsDtypeName): Uint8Array {
  if (dtype === "f32") return new Uint8Array(Float32Array.from(values).buffer);
  const out = Buffer.alloc(values.length * 2);
  for (let i = 0; i < values.length; i++) out.writeUInt16LE(fp32ToFp16Bits(values[i]), i * 2);
  return out;
}

/** The bytes of a torch.save file of `tensors` (name -> tensor, in order) under the archive name `stem`. */
export function encodeStateDict(tensors: ReadonlyMap<string, TensorInput>, dtype: HeadsDtypeName, stem: string): Buffer {
  const entries = [...tensors].map(([name, tensor], i) => {
    const count = tensor.shape.reduce((product, size) => product * size, 1);
    if (count !== tensor.data.length) throw new Error(`${name}: shape [${tensor.shape}] holds ${count} values, got ${tensor.data.length}`);
    return { name, key: String(i), shape: tensor.shape, bytes: storageBytes(tensor.data, dtype) };
  });
  const record = (name: string, data: string | Uint8Array) => ({ name: `${stem}/${name}`, data: typeof data === "string" ? Buffer.from(data) : data });
  return zipStored([
    record("data.pkl", pickleStateDict(entries, dtype)),
    record(".format_version", "1"),
    record(".storage_alignment", String(ZIP_ALIGNMENT)),
    record("byteorder", "little"),
    ...entries.map((entry) => record(`data/${entry.key}`, entry.bytes)),
    record("version", "3\n"),
  ]);
}

/** Writes `file` (via a temporary file and a rename); the archive name is the file's stem, as torch.save does. */
export async function writeStateDict(file: string, tensors: ReadonlyMap<string, TensorInput>, dtype: HeadsDtypeName): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, encodeStateDict(tensors, dtype, path.basename(file, path.extname(file))));
  await rename(temporary, file);
}
