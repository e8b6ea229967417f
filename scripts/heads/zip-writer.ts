// A stored (uncompressed) zip writer laid out like torch.save's (miniz): each entry's data starts at
// a multiple of 64 bytes, padded with an extra field in the local header only.
import { crc32 } from "node:zlib";

/** torch.save aligns every record's data to this many bytes (its `.storage_alignment`). */
export const ZIP_ALIGNMENT = 64;
/** Extra-field id torch uses for its alignment padding ("FB"). */
const PADDING_FIELD = 0x4246;
/** A fixed DOS date (1980-01-01) so that the output depends on the contents only. */
const DOS_DATE = (0 << 9) | (1 << 5) | 1;

export interface ZipInput {
  readonly name: string;
  readonly data: Uint8Array;
}

export function zipStored(entries: readonly ZipInput[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const { name, data } of entries) {
    const nameBytes = Buffer.from(name, "utf8");
    const crc = crc32(data);
    // the extra field needs 4 bytes of its own header, so pad to the next boundary past that
    const unpadded = offset + 30 + nameBytes.length + 4;
    const padding = (ZIP_ALIGNMENT - (unpadded % ZIP_ALIGNMENT)) % ZIP_ALIGNMENT;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed: 2.0
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(4 + padding, 28);
    const extra = Buffer.alloc(4 + padding);
    extra.writeUInt16LE(PADDING_FIELD, 0);
    extra.writeUInt16LE(padding, 2);
    const header = Buffer.alloc(46);
    header.writeUInt32LE(0x02014b50, 0);
    header.writeUInt16LE(20, 4);
    header.writeUInt16LE(20, 6);
    header.writeUInt16LE(DOS_DATE, 14);
    header.writeUInt32LE(crc, 16);
    header.writeUInt32LE(data.length, 20);
    header.writeUInt32LE(data.length, 24);
    header.writeUInt16LE(nameBytes.length, 28);
    header.writeUInt32LE(offset, 42);
    central.push(header, nameBytes);
    parts.push(local, nameBytes, extra, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    offset += local.length + nameBytes.length + extra.length + data.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, directory, end]);
}
