import { crc32, inflateRawSync } from "node:zlib";
import { HeadsError } from "./errors.js";

// Signatures and fixed sizes from PKWARE's APPNOTE.TXT (sections 4.3.7, 4.3.12, 4.3.16).
const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const LOCAL_HEADER_BYTES = 30;
const CENTRAL_HEADER_BYTES = 46;
const EOCD_BYTES = 22;
/** The EOCD record may be followed by a comment of up to 65,535 bytes. */
const MAX_COMMENT_BYTES = 0xffff;
const STORED = 0;
const DEFLATED = 8;

interface ZipEntry {
  readonly name: string;
  readonly method: number;
  readonly crc: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly localHeaderOffset: number;
}

/** The entries of a zip archive held in memory; `read` returns an entry's bytes, checked against its CRC-32. */
export interface ZipArchive {
  readonly names: readonly string[];
  read(name: string): Uint8Array;
}

function findEndOfCentralDirectory(view: DataView): number {
  const last = view.byteLength - EOCD_BYTES;
  for (let at = last; at >= 0 && at >= last - MAX_COMMENT_BYTES; at--) {
    if (view.getUint32(at, true) === END_OF_CENTRAL_DIRECTORY) return at;
  }
  throw new HeadsError("not a zip archive (no end-of-central-directory record)");
}

function readCentralDirectory(view: DataView, bytes: Uint8Array): Map<string, ZipEntry> {
  const eocd = findEndOfCentralDirectory(view);
  const disk = view.getUint16(eocd + 4, true);
  const count = view.getUint16(eocd + 10, true);
  const size = view.getUint32(eocd + 12, true);
  const offset = view.getUint32(eocd + 16, true);
  // torch (miniz) always writes ZIP64 end records too; they matter only when these fields are saturated
  if (count === 0xffff || size === 0xffffffff || offset === 0xffffffff) {
    throw new HeadsError("is a ZIP64 archive, which this reader does not take (heads files are far below 4 GiB)");
  }
  if (disk !== 0) throw new HeadsError("is a multi-disk zip archive, which this reader does not take");
  if (offset + size > eocd) throw new HeadsError("zip central directory lies outside the file (truncated?)");
  const entries = new Map<string, ZipEntry>();
  let at = offset;
  for (let i = 0; i < count; i++) {
    if (at + CENTRAL_HEADER_BYTES > eocd || view.getUint32(at, true) !== CENTRAL_HEADER) {
      throw new HeadsError(`zip central directory entry ${i} is damaged`);
    }
    const flags = view.getUint16(at + 8, true);
    const nameLength = view.getUint16(at + 28, true);
    const entry: ZipEntry = {
      name: new TextDecoder().decode(bytes.subarray(at + CENTRAL_HEADER_BYTES, at + CENTRAL_HEADER_BYTES + nameLength)),
      method: view.getUint16(at + 10, true),
      crc: view.getUint32(at + 16, true),
      compressedSize: view.getUint32(at + 20, true),
      size: view.getUint32(at + 24, true),
      localHeaderOffset: view.getUint32(at + 42, true),
    };
    if (flags & 1) throw new HeadsError(`zip entry ${entry.name} is encrypted`);
    if ([entry.compressedSize, entry.size, entry.localHeaderOffset].includes(0xffffffff)) {
      throw new HeadsError(`zip entry ${entry.name} needs ZIP64, which this reader does not take (heads files are far below 4 GiB)`);
    }
    if (entry.method !== STORED && entry.method !== DEFLATED) {
      throw new HeadsError(`zip entry ${entry.name} uses compression method ${entry.method} (only stored and deflate are read)`);
    }
    entries.set(entry.name, entry);
    at += CENTRAL_HEADER_BYTES + nameLength + view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
  }
  return entries;
}

/** Where an entry's data starts: after its local header, whose extra field (torch's 64-byte alignment padding) may differ from the central one. */
function dataRange(view: DataView, entry: ZipEntry): [number, number] {
  const at = entry.localHeaderOffset;
  if (at + LOCAL_HEADER_BYTES > view.byteLength || view.getUint32(at, true) !== LOCAL_HEADER) {
    throw new HeadsError(`zip entry ${entry.name} has no local header where the directory says`);
  }
  const start = at + LOCAL_HEADER_BYTES + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
  const end = start + entry.compressedSize;
  if (end > view.byteLength) throw new HeadsError(`zip entry ${entry.name} runs past the end of the file (truncated?)`);
  return [start, end];
}

/** Opens a zip archive held in memory (stored and deflated entries; no ZIP64, no encryption). */
export function readZip(bytes: Uint8Array): ZipArchive {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const entries = readCentralDirectory(view, bytes);
  return {
    names: [...entries.keys()],
    read(name: string): Uint8Array {
      const entry = entries.get(name);
      if (!entry) throw new HeadsError(`zip entry ${name} is missing`);
      const [start, end] = dataRange(view, entry);
      const raw = bytes.subarray(start, end);
      let data: Uint8Array;
      try {
        data = entry.method === STORED ? raw : inflateRawSync(raw, { maxOutputLength: Math.max(entry.size, 1) });
      } catch (error) {
        throw new HeadsError(`zip entry ${name} does not inflate: ${(error as Error).message}`);
      }
      if (data.length !== entry.size) throw new HeadsError(`zip entry ${name} holds ${data.length} bytes, its header says ${entry.size}`);
      if (crc32(data) !== entry.crc) throw new HeadsError(`zip entry ${name} fails its CRC-32 check (damaged file)`);
      return data;
    },
  };
}
