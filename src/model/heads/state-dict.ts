import { DTYPE_BYTES, decodeElements, type HeadsDtype } from "./dtype.js";
import { HeadsError } from "./errors.js";
import { unpickle, type AllowedGlobal, type PickleDict } from "./pickle.js";
import { readZip, type ZipArchive } from "./zip.js";

/** One tensor of a state dict, widened to float32, in row-major order. */
export interface Tensor {
  readonly dtype: HeadsDtype;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** A plain state dict: parameter name -> tensor, in the file's order. */
export type StateDict = ReadonlyMap<string, Tensor>;

interface StorageType {
  readonly storageDtype: HeadsDtype;
}

interface StorageRef {
  readonly dtype: HeadsDtype;
  readonly key: string;
  readonly numel: number;
}

interface TensorRef {
  readonly storage: StorageRef;
  readonly offset: number;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
}

/** What pickle.dumps of a legacy (pre-1.6, non-zip) torch.save file starts with: PROTO 2, LONG1 of torch's magic number. */
const LEGACY_MAGIC = Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]);
const ZIP_MAGIC = Uint8Array.from([0x50, 0x4b, 0x03, 0x04]);

const startsWith = (bytes: Uint8Array, prefix: Uint8Array): boolean => prefix.every((byte, i) => bytes[i] === byte);

const isCount = (value: unknown): value is number => typeof value === "number" && Number.isSafeInteger(value) && value >= 0;

const isCountTuple = (value: unknown): value is readonly number[] => Array.isArray(value) && value.every(isCount);

/** Dicts built by `collections.OrderedDict()`, the only objects BUILD may set state on. */
const orderedDicts = new WeakSet<PickleDict>();
/** Objects this file made, so that no other pickled value passes for a storage or a tensor. */
const storageRefs = new WeakSet<object>();
const tensorRefs = new WeakSet<object>();
const isStorage = (value: unknown): value is StorageRef => typeof value === "object" && value !== null && storageRefs.has(value);
const isTensor = (value: unknown): value is TensorRef => typeof value === "object" && value !== null && tensorRefs.has(value);

function isEmptyDict(value: unknown): boolean {
  return value instanceof Map && value.size === 0;
}

function storageGlobal(name: string, dtype: HeadsDtype): [string, AllowedGlobal & StorageType] {
  return [`torch.${name}`, { qualifiedName: `torch.${name}`, storageDtype: dtype }];
}

/** torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]). */
function rebuildTensor(args: readonly unknown[]): TensorRef {
  const [storage, offset, shape, stride, requiresGrad, hooks, metadata] = args;
  const wellFormed =
    (args.length === 6 || (args.length === 7 && isEmptyDict(metadata))) &&
    isStorage(storage) &&
    isCount(offset) &&
    isCountTuple(shape) &&
    isCountTuple(stride) &&
    shape.length === stride.length &&
    typeof requiresGrad === "boolean" &&
    isEmptyDict(hooks);
  if (!wellFormed) throw new HeadsError("refused: _rebuild_tensor_v2 with arguments a plain tensor does not have (hooks or metadata?)");
  const tensor: TensorRef = { storage, offset, shape, stride };
  tensorRefs.add(tensor);
  return tensor;
}

const GLOBALS = new Map<string, AllowedGlobal>([
  [
    "collections.OrderedDict",
    {
      qualifiedName: "collections.OrderedDict",
      call: (args) => {
        if (args.length !== 0) throw new HeadsError("refused: OrderedDict built from arguments");
        const dict: PickleDict = new Map();
        orderedDicts.add(dict);
        return dict;
      },
    },
  ],
  ["torch._utils._rebuild_tensor_v2", { qualifiedName: "torch._utils._rebuild_tensor_v2", call: rebuildTensor }],
  [
    // what torch.save(model.named_parameters()-style dicts) writes for nn.Parameter: the tensor inside
    "torch._utils._rebuild_parameter",
    {
      qualifiedName: "torch._utils._rebuild_parameter",
      call: ([data, requiresGrad, hooks, ...rest]) => {
        if (rest.length > 0 || typeof requiresGrad !== "boolean" || !isEmptyDict(hooks) || !isTensor(data)) {
          throw new HeadsError("refused: _rebuild_parameter with arguments a plain parameter does not have");
        }
        return data;
      },
    },
  ],
  storageGlobal("HalfStorage", "f16"),
  storageGlobal("BFloat16Storage", "bf16"),
  storageGlobal("FloatStorage", "f32"),
]);

function persistentLoader(): (pid: unknown) => StorageRef {
  const storages = new Map<string, StorageRef>();
  return (pid) => {
    const [kind, type, key, , numel] = Array.isArray(pid) ? pid : [];
    const dtype = (type as StorageType | undefined)?.storageDtype;
    if (kind !== "storage" || !dtype || typeof key !== "string" || !isCount(numel) || !Array.isArray(pid) || pid.length !== 5) {
      throw new HeadsError("refused: a persistent id that is not a torch storage of fp16, bf16 or fp32");
    }
    const known = storages.get(key);
    if (known && (known.dtype !== dtype || known.numel !== numel)) throw new HeadsError(`storage ${key} is named with two types or sizes`);
    const storage = known ?? { dtype, key, numel };
    storages.set(key, storage);
    storageRefs.add(storage);
    return storage;
  };
}

/** state_dict() pickles an OrderedDict with a `_metadata` attribute (module versions): taken and ignored. */
function build(target: unknown, state: unknown): void {
  const onlyMetadata = state instanceof Map && [...state.keys()].every((key) => key === "_metadata");
  if (!(target instanceof Map) || !orderedDicts.has(target) || !onlyMetadata) {
    throw new HeadsError("refused: BUILD sets state other than an OrderedDict's _metadata");
  }
}

/** The one `<archive>/` prefix torch writes every record under (the file's stem, or `archive`). */
function archivePrefix(zip: ZipArchive): string {
  const pickles = zip.names.filter((name) => /^[^/]+\/data\.pkl$/.test(name));
  if (pickles.length !== 1) throw new HeadsError("is a zip archive but not a torch.save file (no <name>/data.pkl record)");
  return pickles[0].slice(0, -"data.pkl".length);
}

/** Contiguous row-major: each stride is the product of the sizes after it (dims of size 1 may have any stride). */
function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i];
  }
  return true;
}

function materialize(name: string, ref: TensorRef, zip: ZipArchive, prefix: string): Tensor {
  const { storage, offset, shape, stride } = ref;
  if (!isContiguous(shape, stride)) {
    throw new HeadsError(`tensor ${name} is a non-contiguous view (shape [${shape.join(", ")}], strides [${stride.join(", ")}]); save it with .contiguous()`);
  }
  const count = shape.reduce((product, size) => product * size, 1);
  if (offset + count > storage.numel) throw new HeadsError(`tensor ${name} reaches past the end of its storage ${storage.key}`);
  const bytes = zip.read(`${prefix}data/${storage.key}`);
  if (bytes.length !== storage.numel * DTYPE_BYTES[storage.dtype]) {
    throw new HeadsError(`storage ${storage.key} holds ${bytes.length} bytes, expected ${storage.numel} x ${DTYPE_BYTES[storage.dtype]}`);
  }
  return { dtype: storage.dtype, shape, data: decodeElements(bytes, storage.dtype, offset, count) };
}

/**
 * Reads a torch.save zip file of a plain state dict of fp16/bf16/fp32 tensors, without running its
 * pickle: anything else (other globals, opcodes or objects, non-contiguous views, big-endian data,
 * the legacy format) throws a HeadsError saying what was found.
 */
export function readStateDict(bytes: Uint8Array): StateDict {
  if (startsWith(bytes, LEGACY_MAGIC)) {
    throw new HeadsError(
      "is a legacy (pre-1.6, non-zip) torch.save file; only the zip format is read: load it in Python and torch.save it again",
    );
  }
  if (!startsWith(bytes, ZIP_MAGIC)) throw new HeadsError("is not a torch.save zip file");
  const zip = readZip(bytes);
  const prefix = archivePrefix(zip);
  if (zip.names.includes(`${prefix}byteorder`)) {
    const order = new TextDecoder().decode(zip.read(`${prefix}byteorder`));
    if (order !== "little") throw new HeadsError(`stores ${order}-endian data; only little-endian is read`);
  }
  const root = unpickle(zip.read(`${prefix}data.pkl`), { globals: GLOBALS, persistentLoad: persistentLoader(), build });
  if (!(root instanceof Map)) throw new HeadsError("does not hold a state dict (the pickle's top object is not a dict)");
  const tensors = new Map<string, Tensor>();
  for (const [name, value] of root) {
    if (typeof name !== "string" || !isTensor(value)) {
      throw new HeadsError(`does not hold a plain state dict: entry ${JSON.stringify(name)} is not a tensor`);
    }
    tensors.set(name, materialize(name, value, zip, prefix));
  }
  return tensors;
}
