import { closeSync, openSync, readSync } from "node:fs";

/**
 * The header of a GGUF file (gguf.cpp's layout): scalar metadata and the tensor table, read here rather
 * than with node-llama-cpp so that checking the file does not load node-llama-cpp's JS and native
 * binaries (~70 MB of RSS) into a server that runs the native engine. Arrays (the 250,002-token
 * vocabulary) are skipped, not kept.
 */
export interface GgufHeader {
  readonly version: number;
  /** scalar values only; array-valued keys are absent */
  readonly metadata: ReadonlyMap<string, number | bigint | boolean | string>;
  /** bytes from the start of the file to the end of the last tensor's data */
  readonly dataEnd: number;
}

/** [values per block, bytes per block] of each ggml type (ggml.c's type_traits, llama.cpp as pinned). */
const TYPE_SIZES: Readonly<Record<number, readonly [number, number]>> = {
  0: [1, 4], 1: [1, 2], 2: [32, 18], 3: [32, 20], 6: [32, 22], 7: [32, 24], 8: [32, 34], 9: [32, 36],
  10: [256, 84], 11: [256, 110], 12: [256, 144], 13: [256, 176], 14: [256, 210], 15: [256, 292],
  16: [256, 66], 17: [256, 74], 18: [256, 98], 19: [256, 50], 20: [32, 18], 21: [256, 110], 22: [256, 82],
  23: [256, 136], 24: [1, 1], 25: [1, 2], 26: [1, 4], 27: [1, 8], 28: [1, 8], 29: [256, 56], 30: [1, 2],
  34: [256, 54], 35: [256, 66], 39: [32, 17], 40: [64, 36], 41: [128, 18], 42: [64, 18],
};

/** Bytes of each GGUF scalar value type (gguf_type): u8 i8 u16 i16 u32 i32 f32 bool _ _ u64 i64 f64. */
const SCALAR_BYTES: Readonly<Record<number, number>> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const STRING = 8;
const ARRAY = 9;
const WINDOW = 1 << 20; // bytes read at a time

/** Reads forward through the file through a 1 MiB window; throws at the end of the file. */
class Cursor {
  private buffer = Buffer.alloc(WINDOW);
  private start = 0; // file offset of buffer[0]
  private end = 0; // file offset after the last valid byte
  position = 0;

  constructor(private readonly fd: number) {}

  private ensure(bytes: number): number {
    if (this.position + bytes > this.end) {
      if (bytes > this.buffer.length) this.buffer = Buffer.alloc(bytes);
      this.start = this.position;
      this.end = this.start + readSync(this.fd, this.buffer, 0, this.buffer.length, this.start);
      if (this.position + bytes > this.end) throw new Error(`unexpected end of file at byte ${this.end}`);
    }
    const at = this.position - this.start;
    this.position += bytes;
    return at;
  }

  u32(): number {
    return this.buffer.readUInt32LE(this.ensure(4));
  }

  u64(): number {
    const value = this.buffer.readBigUInt64LE(this.ensure(8));
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`a size of ${value} bytes`);
    return Number(value);
  }

  string(): string {
    const length = this.u64();
    return this.buffer.toString("utf8", this.ensure(length), this.position - this.start);
  }

  skip(bytes: number): void {
    this.position += bytes;
  }

  scalar(type: number): number | bigint | boolean | string {
    if (type === STRING) return this.string();
    const bytes = SCALAR_BYTES[type];
    if (bytes === undefined) throw new Error(`unknown metadata value type ${type}`);
    const at = this.ensure(bytes);
    const b = this.buffer;
    switch (type) {
      case 0: return b.readUInt8(at);
      case 1: return b.readInt8(at);
      case 2: return b.readUInt16LE(at);
      case 3: return b.readInt16LE(at);
      case 4: return b.readUInt32LE(at);
      case 5: return b.readInt32LE(at);
      case 6: return b.readFloatLE(at);
      case 7: return b.readUInt8(at) !== 0;
      case 10: return b.readBigUInt64LE(at);
      case 11: return b.readBigInt64LE(at);
      default: return b.readDoubleLE(at);
    }
  }

  skipArray(): void {
    const type = this.u32();
    const count = this.u64();
    if (type === STRING) for (let i = 0; i < count; i++) this.skip(this.u64());
    else if (SCALAR_BYTES[type] !== undefined) this.skip(count * SCALAR_BYTES[type]);
    else throw new Error(`an array of metadata value type ${type}`);
  }
}

/** Throws (with gguf.cpp-like reasons) when the file is not GGUF or its header is cut short. */
export function readGgufHeader(file: string): GgufHeader {
  const fd = openSync(file, "r");
  try {
    const c = new Cursor(fd);
    if (c.u32() !== 0x46554747) throw new Error("no GGUF magic");
    const version = c.u32();
    if (version < 2 || version > 3) throw new Error(`GGUF version ${version}`);
    const tensorCount = c.u64();
    const keyCount = c.u64();
    const metadata = new Map<string, number | bigint | boolean | string>();
    for (let i = 0; i < keyCount; i++) {
      const key = c.string();
      const type = c.u32();
      if (type === ARRAY) c.skipArray();
      else metadata.set(key, c.scalar(type));
    }
    let dataSize = 0;
    for (let i = 0; i < tensorCount; i++) {
      const name = c.string();
      const dims = Array.from({ length: c.u32() }, () => c.u64());
      const type = c.u32();
      const offset = c.u64();
      const size = TYPE_SIZES[type];
      if (!size) throw new Error(`tensor ${name} has ggml type ${type}, unknown to this llama.cpp`);
      const bytes = (dims.reduce((a, b) => a * b, 1) / size[0]) * size[1];
      dataSize = Math.max(dataSize, offset + bytes);
    }
    const alignment = Number(metadata.get("general.alignment") ?? 32);
    const dataStart = Math.ceil(c.position / alignment) * alignment;
    return { version, metadata, dataEnd: dataStart + dataSize };
  } finally {
    closeSync(fd);
  }
}
