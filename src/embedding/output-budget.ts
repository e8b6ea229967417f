import { CapacityError, InputError } from "./errors.js";

/**
 * The memory answers may hold, all requests together (MAX_OUTPUT_BYTES): each request's outputs (vectors,
 * sparse weights, ColBERT vectors, as typed arrays) are counted from what it asks before anything runs, and
 * held until its answer has been written or abandoned. Answers are streamed from those arrays, so a request
 * holds what is counted here plus what its socket buffers; the engine's per-batch buffers are bounded apart
 * (docs/memory.md).
 */

/** What one request asks of each input, for sizing its outputs. */
export interface OutputShape {
  /** Floats of the dense vector kept per input; 0 when the dense vector is not returned. */
  readonly denseFloats: number;
  readonly sparse: boolean;
  /** Floats of one ColBERT vector; 0 when ColBERT vectors are not returned. */
  readonly colbertFloats: number;
  /** Floats of one token's hidden state; 0 when hidden states are not returned. */
  readonly hiddenFloats?: number;
}

const FLOAT_BYTES = 4;
/** A sparse entry: a uint32 token id and its float32 weight; an input has at most one per token. */
const SPARSE_ENTRY_BYTES = 8;

/** Bytes the outputs of one input of `tokens` tokens (`<s>` and `</s>` included) take. */
export function outputBytes(tokens: number, shape: OutputShape): number {
  const dense = shape.denseFloats * FLOAT_BYTES;
  const sparse = shape.sparse ? tokens * SPARSE_ENTRY_BYTES : 0;
  // one ColBERT vector per token after <s>
  const colbert = shape.colbertFloats * FLOAT_BYTES * Math.max(tokens - 1, 0);
  // one hidden state per token, <s> included
  const hidden = (shape.hiddenFloats ?? 0) * FLOAT_BYTES * tokens;
  return dense + sparse + colbert + hidden;
}

/** Room held in the budget for one request. */
export interface OutputReservation {
  readonly bytes: number;
  /**
   * Holds exactly `bytes` instead (the exact count once the inputs are tokenized): InputError when that
   * is more than the budget could ever hold, CapacityError when the extra room is not free now.
   */
  resize(bytes: number): void;
  /** Gives the room back; safe to call more than once. */
  release(): void;
}

export class OutputBudget {
  private held = 0;

  constructor(
    /** Most bytes held at once. */
    readonly limit: number,
    private readonly onHeld: (bytes: number) => void = () => {},
  ) {}

  get heldBytes(): number {
    return this.held;
  }

  /**
   * Holds room for outputs of at most `bytes` (an upper bound before tokenizing may be over the limit:
   * it holds the whole budget then, and the exact count decides). CapacityError when not free now.
   */
  reserve(bytes: number): OutputReservation {
    let mine = 0;
    const take = (wanted: number) => {
      const extra = wanted - mine;
      if (extra > 0 && this.held + extra > this.limit) {
        throw new CapacityError(
          `answers being computed or written hold ${this.held} of the ${this.limit} bytes of outputs allowed (MAX_OUTPUT_BYTES); ` +
            `this request needs ${wanted - mine} more`,
        );
      }
      this.held += extra;
      mine = wanted;
      this.onHeld(this.held);
    };
    take(Math.min(bytes, this.limit));
    const reservation: OutputReservation = {
      get bytes() {
        return mine;
      },
      resize: (exact) => {
        if (exact > this.limit) {
          throw new InputError(
            `The outputs this request asks for take ${exact} bytes, more than the ${this.limit} bytes the server holds for answers ` +
              `(MAX_OUTPUT_BYTES). Ask for fewer inputs or shorter ones per request (ColBERT vectors take ` +
              `4 bytes x their width per token), or raise MAX_OUTPUT_BYTES.`,
            "input",
            "output_too_large",
          );
        }
        take(exact);
      },
      release: () => take(0),
    };
    return reservation;
  }
}
