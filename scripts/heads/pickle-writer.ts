// The pickle torch.save writes for `linear.state_dict()` (protocol 2), for fp16/fp32 tensors.
/** The element types the writer stores. */
export type HeadsDtypeName = "f16" | "f32";

/** Pickle opcodes (CPython's Lib/pickle.py) this writer emits. */
const op = {
  PROTO: 0x80, STOP: 0x2e, MARK: 0x28, EMPTY_DICT: 0x7d, EMPTY_TUPLE: 0x29, TUPLE: 0x74, BINUNICODE: 0x58,
  BININT1: 0x4b, BININT2: 0x4d, BININT: 0x4a, NEWFALSE: 0x89, GLOBAL: 0x63, BINPERSID: 0x51, REDUCE: 0x52,
  SETITEM: 0x73, SETITEMS: 0x75, BUILD: 0x62,
} as const;

const STORAGE_CLASS: Record<HeadsDtypeName, string> = { f16: "HalfStorage", f32: "FloatStorage" };

export interface PickledTensor {
  readonly name: string;
  /** The storage record it points at: `<archive>/data/<key>`. */
  readonly key: string;
  readonly shape: readonly number[];
}

class PickleBuffer {
  private readonly bytes: number[] = [];
  code(...codes: number[]): this {
    this.bytes.push(...codes);
    return this;
  }
  text(value: string): this {
    const utf8 = Buffer.from(value, "utf8");
    const length = Buffer.alloc(4);
    length.writeUInt32LE(utf8.length);
    return this.code(op.BINUNICODE, ...length, ...utf8);
  }
  global(module: string, name: string): this {
    return this.code(op.GLOBAL, ...Buffer.from(`${module}\n${name}\n`, "utf8"));
  }
  int(value: number): this {
    if (value < 0x100) return this.code(op.BININT1, value);
    if (value < 0x10000) return this.code(op.BININT2, value & 0xff, value >>> 8);
    if (value > 0x7fffffff) throw new Error(`${value} needs LONG1, which this writer does not emit`);
    const bytes = Buffer.alloc(4);
    bytes.writeInt32LE(value);
    return this.code(op.BININT, ...bytes);
  }
  tuple(values: readonly number[]): this {
    this.code(op.MARK);
    for (const value of values) this.int(value);
    return this.code(op.TUPLE);
  }
  emptyOrderedDict(): this {
    return this.global("collections", "OrderedDict").code(op.EMPTY_TUPLE, op.REDUCE);
  }
  toBuffer(): Buffer {
    return Buffer.from(this.bytes);
  }
}

/** OrderedDict(name -> _rebuild_tensor_v2(storage, 0, shape, contiguous strides, False, OrderedDict())) with `_metadata`. */
export function pickleStateDict(tensors: readonly PickledTensor[], dtype: HeadsDtypeName): Buffer {
  const out = new PickleBuffer().code(op.PROTO, 2).emptyOrderedDict().code(op.MARK);
  for (const { name, key, shape } of tensors) {
    const count = shape.reduce((product, size) => product * size, 1);
    const strides = shape.map((_, i) => shape.slice(i + 1).reduce((product, size) => product * size, 1));
    out.text(name).global("torch._utils", "_rebuild_tensor_v2").code(op.MARK);
    out.code(op.MARK).text("storage").global("torch", STORAGE_CLASS[dtype]).text(key).text("cpu").int(count).code(op.TUPLE);
    out.code(op.BINPERSID).int(0).tuple(shape).tuple(strides).code(op.NEWFALSE).emptyOrderedDict();
    out.code(op.TUPLE, op.REDUCE);
  }
  out.code(op.SETITEMS);
  // state_dict()'s `_metadata` attribute: {"": {"version": 1}}, what nn.Linear records
  out.code(op.EMPTY_DICT).text("_metadata").emptyOrderedDict().text("").code(op.EMPTY_DICT).text("version").int(1);
  return out.code(op.SETITEM, op.SETITEM, op.SETITEM, op.BUILD, op.STOP).toBuffer();
}
