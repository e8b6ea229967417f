// A deliberately separate GGUF reader + dequantiser for tests. It shares no code
// with scripts/gguf (the writer and quantizers under test): layouts come from
// ggml-common.h / gguf.cpp, so a mistake on one side shows up as a mismatch.
import { closeSync, openSync, readSync } from "node:fs";

export type GgufMetadataValue = number | bigint | boolean | string | GgufMetadataValue[];

export type GgufTensorInfo = {
  name: string,
  /** ggml order: dims[0] is the contiguous row length */
  dims: number[],
  type: number,
  /** absolute file offset of the data */
  offset: number
};

export const GGML_F32 = 0, GGML_F16 = 1, GGML_Q8_0 = 8, GGML_Q4_K = 12, GGML_Q6_K = 14;

const layouts: Record<number, { block: number, bytes: number }> = {
  [GGML_F32]: { block: 1, bytes: 4 },
  [GGML_F16]: { block: 1, bytes: 2 },
  [GGML_Q8_0]: { block: 32, bytes: 34 },
  [GGML_Q4_K]: { block: 256, bytes: 144 },
  [GGML_Q6_K]: { block: 256, bytes: 210 }
};

export class GgufReader {
  readonly version: number;
  readonly metadata = new Map<string, GgufMetadataValue>();
  /** GGUF value type of each metadata key (arrays: [9, itemType]) */
  readonly metadataTypes = new Map<string, number[]>();
  readonly tensors = new Map<string, GgufTensorInfo>();
  readonly alignment: number;
  readonly dataOffset: number;
  private readonly fd: number;

  constructor(readonly path: string) {
    this.fd = openSync(path, "r");
    const c = new Cursor(this.fd);
    if (c.u32() !== 0x46554747)
      throw new Error(`${path}: not a GGUF file`);
    this.version = c.u32();
    const tensorCount = c.u64();
    const kvCount = c.u64();
    for (let i = 0; i < kvCount; i++) {
      const key = c.str();
      const type = c.u32();
      if (type === 9) {
        const itemType = c.u32();
        const n = c.u64();
        const items: GgufMetadataValue[] = new Array(n);
        for (let j = 0; j < n; j++)
          items[j] = c.scalar(itemType);
        this.metadata.set(key, items);
        this.metadataTypes.set(key, [type, itemType]);
      } else {
        this.metadata.set(key, c.scalar(type));
        this.metadataTypes.set(key, [type]);
      }
    }
    const infos: Omit<GgufTensorInfo, "offset">[] = [];
    const relOffsets: number[] = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = c.str();
      const nDims = c.u32();
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++)
        dims.push(c.u64());
      const type = c.u32();
      relOffsets.push(c.u64());
      infos.push({ name, dims, type });
    }
    const alignment = this.metadata.get("general.alignment");
    this.alignment = typeof alignment === "number" ? alignment : 32;
    this.dataOffset = Math.ceil(c.position / this.alignment) * this.alignment;
    infos.forEach((info, i) => this.tensors.set(info.name, { ...info, offset: this.dataOffset + relOffsets[i] }));
  }

  close(): void {
    closeSync(this.fd);
  }

  tensor(name: string): GgufTensorInfo {
    const t = this.tensors.get(name);
    if (t === undefined)
      throw new Error(`${this.path}: no tensor ${name}`);
    return t;
  }

  rowBytes(info: GgufTensorInfo): number {
    const layout = layouts[info.type];
    if (layout === undefined)
      throw new Error(`${info.name}: unsupported ggml type ${info.type}`);
    return (info.dims[0] / layout.block) * layout.bytes;
  }

  /** Size of the whole tensor's data in the file. */
  byteLength(info: GgufTensorInfo): number {
    return this.rowBytes(info) * info.dims.slice(1).reduce((a, b) => a * b, 1);
  }

  /** Raw bytes of the whole tensor. */
  rawBytes(name: string): Uint8Array {
    const info = this.tensor(name);
    return this.read(info.offset, this.byteLength(info));
  }

  /** The whole tensor as float32 values (dequantised). */
  floats(name: string): Float32Array {
    const info = this.tensor(name);
    return dequantize(info.type, this.rawBytes(name), info.dims.reduce((a, b) => a * b, 1));
  }

  /** Selected rows (dims[1] index) as float32, e.g. the token_embd rows of a prompt. */
  rows(name: string, rowIndices: readonly number[]): Float32Array {
    const info = this.tensor(name);
    const rowBytes = this.rowBytes(info);
    const n = info.dims[0];
    const out = new Float32Array(rowIndices.length * n);
    rowIndices.forEach((r, i) => {
      if (r < 0 || r >= (info.dims[1] ?? 1))
        throw new Error(`${name}: row ${r} out of range`);
      out.set(dequantize(info.type, this.read(info.offset + r * rowBytes, rowBytes), n), i * n);
    });
    return out;
  }

  private read(position: number, length: number): Uint8Array {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, out, done, length - done, position + done);
      if (n === 0)
        throw new Error(`${this.path}: unexpected end of file at ${position + done}`);
      done += n;
    }
    return out;
  }
}

class Cursor {
  position = 0;
  private buf = Buffer.alloc(0);
  private bufStart = 0;

  constructor(private readonly fd: number) {}

  u32(): number {
    return this.take(4).readUInt32LE(0);
  }

  u64(): number {
    const v = this.take(8).readBigUInt64LE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER))
      throw new Error(`u64 ${v} too large`);
    return Number(v);
  }

  str(): string {
    const n = this.u64();
    return this.take(n).toString("utf8");
  }

  scalar(type: number): GgufMetadataValue {
    switch (type) {
      case 0: return this.take(1).readUInt8(0);
      case 1: return this.take(1).readInt8(0);
      case 2: return this.take(2).readUInt16LE(0);
      case 3: return this.take(2).readInt16LE(0);
      case 4: return this.u32();
      case 5: return this.take(4).readInt32LE(0);
      case 6: return this.take(4).readFloatLE(0);
      case 7: return this.take(1).readUInt8(0) !== 0;
      case 8: return this.str();
      case 10: return this.take(8).readBigUInt64LE(0);
      case 11: return this.take(8).readBigInt64LE(0);
      case 12: return this.take(8).readDoubleLE(0);
      default: throw new Error(`unknown GGUF value type ${type} at ${this.position}`);
    }
  }

  private take(n: number): Buffer {
    const rel = this.position - this.bufStart;
    if (rel + n > this.buf.length) {
      const size = Math.max(n, 1 << 20);
      const next = Buffer.alloc(size);
      const got = readSync(this.fd, next, 0, size, this.position);
      if (got < n)
        throw new Error(`unexpected end of GGUF header at ${this.position}`);
      this.buf = next.subarray(0, got);
      this.bufStart = this.position;
    }
    const start = this.position - this.bufStart;
    this.position += n;
    return this.buf.subarray(start, start + n);
  }
}

/** IEEE half -> number, by formula rather than a lookup table. */
export function halfToNumber(h: number): number {
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  const sign = h & 0x8000 ? -1 : 1;
  if (exponent === 0)
    return sign * Math.pow(2, -14) * (fraction / 1024);
  if (exponent === 31)
    return fraction ? NaN : sign * Infinity;
  return sign * Math.pow(2, exponent - 15) * (1 + fraction / 1024);
}

export function dequantize(type: number, bytes: Uint8Array, count: number): Float32Array {
  const out = new Float32Array(count);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const half = (o: number): number => halfToNumber(dv.getUint16(o, true));
  switch (type) {
    case GGML_F32:
      for (let i = 0; i < count; i++)
        out[i] = dv.getFloat32(i * 4, true);
      return out;
    case GGML_F16:
      for (let i = 0; i < count; i++)
        out[i] = half(i * 2);
      return out;
    case GGML_Q8_0:
      // struct { ggml_half d; int8_t qs[32]; }
      for (let b = 0; b < count / 32; b++) {
        const d = half(b * 34);
        for (let j = 0; j < 32; j++)
          out[b * 32 + j] = d * dv.getInt8(b * 34 + 2 + j);
      }
      return out;
    case GGML_Q4_K:
      // struct { ggml_half d, dmin; uint8_t scales[12]; uint8_t qs[128]; }
      for (let b = 0; b < count / 256; b++) {
        const o = b * 144;
        const d = half(o), dmin = half(o + 2);
        const s = bytes.subarray(o + 4, o + 16);
        // 6-bit scale and min of sub-block j (get_scale_min_k4)
        const scaleMin = (j: number): [number, number] => j < 4
          ? [s[j] & 63, s[j + 4] & 63]
          : [(s[j + 4] & 15) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4)];
        for (let chunk = 0; chunk < 4; chunk++) {
          const q = bytes.subarray(o + 16 + chunk * 32, o + 16 + chunk * 32 + 32);
          const [sc0, m0] = scaleMin(2 * chunk);
          const [sc1, m1] = scaleMin(2 * chunk + 1);
          for (let l = 0; l < 32; l++) {
            out[b * 256 + chunk * 64 + l] = d * sc0 * (q[l] & 15) - dmin * m0;
            out[b * 256 + chunk * 64 + 32 + l] = d * sc1 * (q[l] >> 4) - dmin * m1;
          }
        }
      }
      return out;
    case GGML_Q6_K:
      // struct { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; ggml_half d; }
      for (let b = 0; b < count / 256; b++) {
        const o = b * 210;
        const d = half(o + 208);
        for (let i = 0; i < 256; i++) {
          const half128 = i >> 7, r = i & 127;
          const quarter = r >> 5, l = r & 31;
          const qlByte = bytes[o + half128 * 64 + (quarter & 1) * 32 + l];
          const low = quarter < 2 ? qlByte & 15 : qlByte >> 4;
          const high = (bytes[o + 128 + half128 * 32 + l] >> (2 * quarter)) & 3;
          const scale = dv.getInt8(o + 192 + (i >> 4));
          out[b * 256 + i] = d * scale * ((low | (high << 4)) - 32);
        }
      }
      return out;
    default:
      throw new Error(`unsupported ggml type ${type}`);
  }
}
