import { HeadsError } from "./errors.js";
import { opcodeName } from "./opcode-names.js";

/** A global the caller allows, by its qualified name (`module.name`); `call` runs it for REDUCE. */
export interface AllowedGlobal {
  readonly qualifiedName: string;
  readonly call?: (args: readonly unknown[]) => unknown;
}

export interface UnpickleHooks {
  /** The only globals GLOBAL / STACK_GLOBAL may name; any other is refused. */
  readonly globals: ReadonlyMap<string, AllowedGlobal>;
  /** BINPERSID: what the persistent id stands for (torch: a storage). */
  readonly persistentLoad: (pid: unknown) => unknown;
  /** BUILD: sets `state` on `target`; throws when the caller does not take it. */
  readonly build: (target: unknown, state: unknown) => void;
}

/** Pickle tuples, frozen so that nothing downstream mistakes them for lists. */
export type PickleTuple = readonly unknown[];

/** A dict from EMPTY_DICT (or an allowed global that makes one): a Map, keys as pickled. */
export type PickleDict = Map<unknown, unknown>;

/** The memo is indexed by 32-bit ids; a state dict uses a few per tensor. */
const MAX_MEMO = 1 << 20;

/**
 * A pickle reader that never runs Python: it knows the opcodes torch.save's protocol-2 (and 3 to 5)
 * pickles of a state dict use, builds dicts, tuples, strings, ints and booleans itself, and reaches
 * code only through `hooks`. Any other opcode, or a global not in `hooks.globals`, is refused with
 * its name. Returns the unpickled value.
 */
export function unpickle(bytes: Uint8Array, hooks: UnpickleHooks): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  const memo = new Map<number, unknown>();
  const callables = new Set<unknown>([...hooks.globals.values()].filter((g) => g.call));
  let at = 0;

  const need = (count: number): number => {
    if (at + count > bytes.length) throw new HeadsError(`pickle ends early at byte ${at}`);
    const start = at;
    at += count;
    return start;
  };
  const pop = (): unknown => {
    if (stack.length === 0) throw new HeadsError(`pickle stack underflow at byte ${at}`);
    return stack.pop();
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const previous = marks.pop();
    if (!previous) throw new HeadsError(`pickle has no MARK for the opcode before byte ${at}`);
    stack = previous;
    return items;
  };
  const text = (length: number): string => {
    const start = need(length);
    try {
      return decoder.decode(bytes.subarray(start, start + length));
    } catch {
      throw new HeadsError(`pickle string at byte ${start} is not UTF-8`);
    }
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, at);
    if (end < 0) throw new HeadsError(`pickle GLOBAL at byte ${at} has no newline`);
    return text(end - at + 1).slice(0, -1);
  };
  const resolveGlobal = (module: string, name: string): AllowedGlobal => {
    const qualifiedName = `${module}.${name}`;
    const allowed = hooks.globals.get(qualifiedName);
    if (!allowed) {
      throw new HeadsError(
        `refused: the pickle names the global ${qualifiedName}, and only a state dict of tensors is read ` +
          `(allowed: ${[...hooks.globals.keys()].join(", ")}); the file was not executed`,
      );
    }
    return allowed;
  };
  const put = (id: number): void => {
    if (id >= MAX_MEMO) throw new HeadsError(`pickle memo id ${id} is out of range`);
    if (stack.length === 0) throw new HeadsError(`pickle memoizes an empty stack at byte ${at}`);
    memo.set(id, stack[stack.length - 1]);
  };
  const get = (id: number): void => {
    if (!memo.has(id)) throw new HeadsError(`pickle reads memo id ${id}, which was never set`);
    stack.push(memo.get(id));
  };
  const dictOf = (target: unknown): PickleDict => {
    if (!(target instanceof Map)) throw new HeadsError(`pickle sets items on something that is not a dict at byte ${at}`);
    return target;
  };

  while (at < bytes.length) {
    const code = bytes[need(1)];
    switch (code) {
      case 0x80: // PROTO
        if (bytes[need(1)] > 5) throw new HeadsError(`pickle protocol ${bytes[at - 1]} is newer than 5`);
        break;
      case 0x95: // FRAME: a length prefix only
        need(8);
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length !== 0) throw new HeadsError("pickle stops with a malformed stack");
        return stack[0];
      case 0x28: // MARK
        marks.push(stack);
        stack = [];
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(Object.freeze([]));
        break;
      case 0x74: { // TUPLE (popMark first: it replaces `stack`)
        const items = popMark();
        stack.push(Object.freeze(items));
        break;
      }
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: { // TUPLE3
        const items = Array.from({ length: code - 0x84 }, pop).reverse();
        stack.push(Object.freeze(items));
        break;
      }
      case 0x58: // BINUNICODE
        stack.push(text(view.getUint32(need(4), true)));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(bytes[need(1)]));
        break;
      case 0x71: // BINPUT
        put(bytes[need(1)]);
        break;
      case 0x72: // LONG_BINPUT
        put(view.getUint32(need(4), true));
        break;
      case 0x94: // MEMOIZE
        put(memo.size);
        break;
      case 0x68: // BINGET
        get(bytes[need(1)]);
        break;
      case 0x6a: // LONG_BINGET
        get(view.getUint32(need(4), true));
        break;
      case 0x4b: // BININT1
        stack.push(bytes[need(1)]);
        break;
      case 0x4d: // BININT2
        stack.push(view.getUint16(need(2), true));
        break;
      case 0x4a: // BININT
        stack.push(view.getInt32(need(4), true));
        break;
      case 0x8a: { // LONG1: little-endian two's complement; sizes and offsets stay below 2^53
        const length = bytes[need(1)];
        const start = need(length);
        let value = 0n;
        for (let i = length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[start + i]);
        if (length > 0 && bytes[start + length - 1] & 0x80) value -= 1n << BigInt(8 * length);
        if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
          throw new HeadsError(`pickle integer at byte ${start} is too large`);
        }
        stack.push(Number(value));
        break;
      }
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x63: { // GLOBAL
        const module = line();
        stack.push(resolveGlobal(module, line()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") throw new HeadsError("pickle STACK_GLOBAL without two strings");
        stack.push(resolveGlobal(module, name));
        break;
      }
      case 0x51: // BINPERSID
        stack.push(hooks.persistentLoad(pop()));
        break;
      case 0x52: { // REDUCE
        const args = pop();
        const callable = pop();
        if (!Array.isArray(args) || !callables.has(callable)) {
          const what = (callable as AllowedGlobal | undefined)?.qualifiedName ?? "a value";
          throw new HeadsError(`refused: REDUCE at byte ${at - 1} calls ${what}, which is not an allowed callable`);
        }
        stack.push((callable as Required<AllowedGlobal>).call(args));
        break;
      }
      case 0x73: { // SETITEM
        const value = pop();
        const key = pop();
        dictOf(stack[stack.length - 1]).set(key, value);
        break;
      }
      case 0x75: { // SETITEMS
        const items = popMark();
        if (items.length % 2 !== 0) throw new HeadsError("pickle SETITEMS with an odd number of items");
        const dict = dictOf(stack[stack.length - 1]);
        for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1]);
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        hooks.build(stack[stack.length - 1], state);
        break;
      }
      default:
        throw new HeadsError(`refused: pickle opcode ${opcodeName(code)} at byte ${at - 1} is not used by a state dict of tensors; the file was not executed`);
    }
  }
  throw new HeadsError("pickle ends without STOP");
}
