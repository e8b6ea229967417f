import type { Vocabulary } from "../engine/types.js";

/**
 * Token-level views of a text for text-embeddings-inference's `/tokenize` and `/decode`: which piece of
 * the input each token covers, and the text a list of ids spells. BGE-M3's tokenizer is XLM-R's
 * SentencePiece Unigram model: a piece's "\u2581" marks a space before it, and the tokenizer adds one
 * before the first word; its normaliser (NFKC-like) may change characters, so spans are found by
 * aligning the pieces with the input rather than taken from the engine, which does not report them.
 */

const WORD_MARKER = /\u2581/g;

/** One token of a tokenized text. */
export interface TextToken {
  readonly id: number;
  /** The input's text the token covers; for an added `<s>`/`</s>`, or a token that could not be aligned, the piece itself. */
  readonly text: string;
  /** `<s>` or `</s>` added around the input (TEI's `special`). */
  readonly special: boolean;
  /** UTF-8 byte offsets of `text` in the input, as text-embeddings-inference reports them; null when unknown. */
  readonly start: number | null;
  readonly stop: number | null;
}

/** Longest stretch of input one normalised piece may come from (NFKC rarely expands a character beyond this). */
const MAX_EXPANSION = 4;

/**
 * Where `piece` (its "\u2581" already spaces) starts in `text` at or after `from`: [start, stop) in UTF-16
 * units, or undefined when the normaliser changed it beyond what NFKC explains (an `<unk>`, say).
 */
function findPiece(text: string, piece: string, from: number): [number, number] | undefined {
  const body = piece.trimStart();
  let at = from;
  // whitespace the tokenizer folded into the piece's marker (or dropped)
  while (at < text.length && /\s/.test(text[at])) at++;
  // a piece that marks a space covers the space before its word, as Hugging Face's tokenizers count it
  const start = body.length < piece.length && at > from ? at - 1 : at;
  // a lone marker: the whitespace before the next word, or nothing when the input has none there
  if (body.length === 0) return [start, at];
  if (text.startsWith(body, at)) return [start, at + body.length];
  for (let end = at + 1; end <= Math.min(text.length, at + body.length * MAX_EXPANSION); end++) {
    const normalised = text.slice(at, end).normalize("NFKC");
    if (normalised === body) return [start, end];
    if (normalised.length > body.length) break;
  }
  return undefined;
}

/**
 * The tokens of `text`, given its ids as the model sees them (`<s>` first and `</s>` last when `withSpecials`).
 * Offsets count UTF-8 bytes from the start of the input, as text-embeddings-inference's do.
 */
export function textTokens(text: string, ids: Uint32Array, vocabulary: Vocabulary, withSpecials: boolean): TextToken[] {
  const pieces = vocabulary.texts(ids);
  let cursor = 0; // UTF-16 units into text
  let bytes = 0; // UTF-8 bytes of text[0, cursor)
  const byteOffset = (index: number) => {
    bytes += Buffer.byteLength(text.slice(cursor, index));
    cursor = index;
    return bytes;
  };
  return Array.from(ids, (id, position) => {
    const special = withSpecials && (position === 0 || position === ids.length - 1);
    if (special) return { id, text: pieces[position], special, start: null, stop: null };
    const span = findPiece(text, pieces[position].replace(WORD_MARKER, " "), cursor);
    if (!span) return { id, text: pieces[position].replace(WORD_MARKER, " "), special, start: null, stop: null };
    const start = byteOffset(span[0]);
    const stop = byteOffset(span[1]);
    return { id, text: text.slice(span[0], span[1]), special, start, stop };
  });
}

/**
 * The text `ids` spell, as Hugging Face's tokenizer decodes XLM-R's pieces (its Metaspace decoder): every
 * "\u2581" a space, except the one the tokenizer added before the first word. `skipSpecial` leaves out
 * control and unknown tokens (`<s>`, `</s>`, `<pad>`, `<unk>`, `<mask>`).
 */
export function decodeTokens(ids: Uint32Array, vocabulary: Vocabulary, skipSpecial: boolean): string {
  const kept = skipSpecial ? ids.filter((id) => !vocabulary.special.has(id)) : ids;
  const text = vocabulary.texts(kept).join("").replace(WORD_MARKER, " ");
  return text.startsWith(" ") ? text.slice(1) : text;
}
