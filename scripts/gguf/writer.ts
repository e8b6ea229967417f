// Minimal GGUF v3 writer. The header (metadata + tensor infos with offsets) only
// depends on names, shapes and types, so it is written first and tensor data is
// then streamed tensor by tensor: a full-size model never sits in memory.
import { closeSync, openSync, writeSync } from "node:fs";

/** ggml tensor types this project writes (values are ggml's `enum ggml_type`). */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
  Q8_0 = 8,
  Q4_K = 12,
  Q6_K = 14
}

/** Elements per block and bytes per block, as in ggml-common.h. */
export const ggmlTypeLayout: Readonly<Record<GgmlType, { blockSize: number, typeSize: number, name: string }>> = {
  [GgmlType.F32]: { blockSize: 1, typeSize: 4, name: "F32" },
  [GgmlType.F16]: { blockSize: 1, typeSize: 2, name: "F16" },
  [GgmlType.Q8_0]: { blockSize: 32, typeSize: 2 + 32, name: "Q8_0" },
  [GgmlType.Q4_K]: { blockSize: 256, typeSize: 2 + 2 + 12 + 128, name: "Q4_K" },
  [GgmlType.Q6_K]: { blockSize: 256, typeSize: 128 + 64 + 16 + 2, name: "Q6_K" }
};

export function tensorByteSize(type: GgmlType, shape: readonly number[]): number {
  const { blockSize, typeSize } = ggmlTypeLayout[type];
  const rowLength = shape[0] ?? 1;
  if (rowLength % blockSize !== 0)
    throw new Error(`row length ${rowLength} is not a multiple of ${ggmlTypeLayout[type].name}'s block size ${blockSize}`);
  const rows = shape.slice(1).reduce((a, b) => a * b, 1);
  return (rowLength / blockSize) * typeSize * rows;
}

/** GGUF metadata value types (gguf.h `enum gguf_type`). */
export enum GgufValueType {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5,
  FLOAT32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12
}

type NumericValueType = Exclude<GgufValueType, GgufValueType.BOOL | GgufValueType.STRING | GgufValueType.ARRAY>;

export type GgufValue =
  | { type: NumericValueType, value: number | bigint }
  | { type: GgufValueType.BOOL, value: boolean }
  | { type: GgufValueType.STRING, value: string }
  | { type: GgufValueType.ARRAY, itemType: NumericValueType, value: ArrayLike<number> }
  | { type: GgufValueType.ARRAY, itemType: GgufValueType.BOOL, value: readonly boolean[] }
  | { type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value: readonly string[] };

/** Typed constructors so call sites read like the GGUF spec. */
export const gguf = {
  u8: (value: number): GgufValue => ({ type: GgufValueType.UINT8, value }),
  u32: (value: number): GgufValue => ({ type: GgufValueType.UINT32, value }),
  i32: (value: number): GgufValue => ({ type: GgufValueType.INT32, value }),
  u64: (value: number | bigint): GgufValue => ({ type: GgufValueType.UINT64, value }),
  f32: (value: number): GgufValue => ({ type: GgufValueType.FLOAT32, value }),
  f64: (value: number): GgufValue => ({ type: GgufValueType.FLOAT64, value }),
  bool: (value: boolean): GgufValue => ({ type: GgufValueType.BOOL, value }),
  str: (value: string): GgufValue => ({ type: GgufValueType.STRING, value }),
  strArray: (value: readonly string[]): GgufValue => ({ type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value }),
  numArray: (itemType: NumericValueType, value: ArrayLike<number>): GgufValue =>
    ({ type: GgufValueType.ARRAY, itemType, value })
};

export type TensorChunks = Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

export type GgufTensorSpec = {
  name: string,
  /** ggml order: shape[0] is the row length (contiguous), shape[1] the row count. */
  shape: readonly number[],
  type: GgmlType,
  /** Produces exactly tensorByteSize(type, shape) bytes, in any chunking. Called once, in file order. */
  data: () => TensorChunks
};

export type GgufFile = {
  /** Written in insertion order. */
  metadata: Readonly<Record<string, GgufValue>>,
  tensors: readonly GgufTensorSpec[],
  alignment?: number
};

const defaultAlignment = 32;

/** Writes `file` to `path` (overwriting it). Peak memory is one tensor chunk plus a 4 MiB buffer. */
export async function writeGgufFile(path: string, file: GgufFile): Promise<void> {
  const alignment = file.alignment ?? defaultAlignment;
  const metadata: Record<string, GgufValue> = { ...file.metadata };
  if (alignment !== defaultAlignment)
    metadata["general.alignment"] = gguf.u32(alignment);

  const out = new BufferedFileWriter(path);
  try {
    const header = new ByteBuilder();
    header.u32(0x46554747); // "GGUF" little-endian
    header.u32(3);
    header.u64(file.tensors.length);
    header.u64(Object.keys(metadata).length);
    for (const [key, value] of Object.entries(metadata)) {
      header.string(key);
      writeValue(header, value);
    }

    let offset = 0;
    const sizes: number[] = [];
    for (const tensor of file.tensors) {
      const size = tensorByteSize(tensor.type, tensor.shape);
      sizes.push(size);
      header.string(tensor.name);
      header.u32(tensor.shape.length);
      for (const dim of tensor.shape)
        header.u64(dim);
      header.u32(tensor.type);
      header.u64(offset);
      offset += padTo(size, alignment);
    }
    out.write(header.toBytes());
    out.pad(alignment);

    for (let i = 0; i < file.tensors.length; i++) {
      const tensor = file.tensors[i];
      const start = out.position;
      for await (const chunk of tensor.data())
        out.write(chunk);
      const written = out.position - start;
      if (written !== sizes[i])
        throw new Error(`tensor ${tensor.name}: produced ${written} bytes, expected ${sizes[i]}`);
      out.pad(alignment);
    }
  } finally {
    out.close();
  }
}

function padTo(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

function writeValue(b: ByteBuilder, value: GgufValue): void {
  b.u32(value.type);
  if (value.type === GgufValueType.ARRAY) {
    b.u32(value.itemType);
    b.u64(value.value.length);
    for (let i = 0; i < value.value.length; i++)
      writeScalar(b, value.itemType, value.value[i]);
  } else
    writeScalar(b, value.type, value.value);
}

function writeScalar(b: ByteBuilder, type: GgufValueType, v: number | bigint | boolean | string): void {
  switch (type) {
    case GgufValueType.UINT8: return b.raw(1, (d, o) => d.setUint8(o, Number(v)));
    case GgufValueType.INT8: return b.raw(1, (d, o) => d.setInt8(o, Number(v)));
    case GgufValueType.UINT16: return b.raw(2, (d, o) => d.setUint16(o, Number(v), true));
    case GgufValueType.INT16: return b.raw(2, (d, o) => d.setInt16(o, Number(v), true));
    case GgufValueType.UINT32: return b.u32(Number(v));
    case GgufValueType.INT32: return b.raw(4, (d, o) => d.setInt32(o, Number(v), true));
    case GgufValueType.FLOAT32: return b.raw(4, (d, o) => d.setFloat32(o, Number(v), true));
    case GgufValueType.FLOAT64: return b.raw(8, (d, o) => d.setFloat64(o, Number(v), true));
    case GgufValueType.UINT64: return b.u64(v as number | bigint);
    case GgufValueType.INT64: return b.raw(8, (d, o) => d.setBigInt64(o, BigInt(v as number | bigint), true));
    case GgufValueType.BOOL: return b.raw(1, (d, o) => d.setUint8(o, v ? 1 : 0));
    case GgufValueType.STRING: return b.string(String(v));
    default: throw new Error(`unsupported GGUF scalar type ${type}`);
  }
}

/** Growable little-endian byte buffer for the header (the vocabulary alone is several MB). */
class ByteBuilder {
  private buf = new Uint8Array(1 << 20);
  private view = new DataView(this.buf.buffer);
  private length = 0;

  raw(size: number, put: (view: DataView, offset: number) => void): void {
    this.reserve(size);
    put(this.view, this.length);
    this.length += size;
  }

  u32(v: number): void {
    this.raw(4, (d, o) => d.setUint32(o, v, true));
  }

  u64(v: number | bigint): void {
    this.raw(8, (d, o) => d.setBigUint64(o, BigInt(v), true));
  }

  string(s: string): void {
    const bytes = Buffer.from(s, "utf8");
    this.u64(bytes.length);
    this.reserve(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }

  toBytes(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

  private reserve(extra: number): void {
    if (this.length + extra <= this.buf.length)
      return;
    let size = this.buf.length * 2;
    while (size < this.length + extra)
      size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
}

/** Coalesces small writes; large chunks go straight to the file. */
class BufferedFileWriter {
  position = 0;
  private readonly fd: number;
  private readonly buf = new Uint8Array(4 << 20);
  private used = 0;

  constructor(path: string) {
    this.fd = openSync(path, "w");
  }

  write(chunk: Uint8Array): void {
    if (chunk.length >= this.buf.length) {
      this.flush();
      writeAll(this.fd, chunk);
    } else {
      if (this.used + chunk.length > this.buf.length)
        this.flush();
      this.buf.set(chunk, this.used);
      this.used += chunk.length;
    }
    this.position += chunk.length;
  }

  pad(alignment: number): void {
    const padding = padTo(this.position, alignment) - this.position;
    if (padding > 0)
      this.write(new Uint8Array(padding));
  }

  close(): void {
    try {
      this.flush();
    } finally {
      closeSync(this.fd);
    }
  }

  private flush(): void {
    writeAll(this.fd, this.buf.subarray(0, this.used));
    this.used = 0;
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length)
    done += writeSync(fd, bytes, done, bytes.length - done);
}
