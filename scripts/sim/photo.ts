/**
 * Generated photos for the simulator, tests and benchmarks: a JPEG container (SOI, an EXIF APP1
 * block with the capture date and GPS position, filler, EOI) of a chosen size. Its bytes are
 * what a magic-byte sniffer and an EXIF parser see in a phone photo; it is not meant to be
 * displayed. The EXIF block is written by hand because no maintained package writes EXIF.
 */
import { createHash, randomBytes } from 'node:crypto';

export interface PhotoOptions {
  byteSize: number;
  takenAt?: Date;
  gps?: { lat: number; lon: number };
  /** Filler bytes: random by default (photos do not compress). */
  fill?: (size: number) => Uint8Array;
}

export interface Photo {
  bytes: Uint8Array;
  sha256: string;
  contentType: 'image/jpeg';
}

export function makePhoto(opts: PhotoOptions): Photo {
  const exif = exifBlock(opts.takenAt ?? new Date(), opts.gps);
  const head = Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    segment(0xe1, Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), exif])),
  ]);
  const tail = Buffer.from([0xff, 0xd9]);
  let remaining = opts.byteSize - head.length - tail.length;
  if (remaining < 0) throw new Error(`a photo needs at least ${head.length + tail.length} bytes`);
  const parts: Buffer[] = [head];
  // Filler as comment segments (at most 65,533 bytes each); the last one takes what is left.
  while (remaining > 0) {
    const body = Math.min(remaining - 4, 65_533);
    if (body < 0) {
      parts.push(Buffer.alloc(remaining)); // fewer than 4 bytes left: padding before EOI
      break;
    }
    const fill = opts.fill ? Buffer.from(opts.fill(body)) : randomBytes(body);
    parts.push(segment(0xfe, fill));
    remaining -= body + 4;
  }
  parts.push(tail);
  const bytes = Buffer.concat(parts);
  return {
    bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    sha256: createHash('sha256').update(bytes).digest('hex'),
    contentType: 'image/jpeg',
  };
}

function segment(marker: number, body: Buffer): Buffer {
  const header = Buffer.from([0xff, marker, 0, 0]);
  header.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([header, body]);
}

/** A little-endian TIFF block: IFD0 -> Exif IFD (DateTimeOriginal) and GPS IFD. */
function exifBlock(takenAt: Date, gps: { lat: number; lon: number } | undefined): Buffer {
  const b = Buffer.alloc(178);
  b.write('II', 0, 'latin1');
  b.writeUInt16LE(42, 2);
  b.writeUInt32LE(8, 4);
  const entry = (at: number, tag: number, type: number, count: number, value: number) => {
    b.writeUInt16LE(tag, at);
    b.writeUInt16LE(type, at + 2);
    b.writeUInt32LE(count, at + 4);
    b.writeUInt32LE(value, at + 8);
  };
  // IFD0 at 8: two entries, pointers to the Exif IFD (38) and the GPS IFD (76).
  b.writeUInt16LE(2, 8);
  entry(10, 0x8769, 4, 1, 38);
  entry(22, 0x8825, 4, 1, 76);
  b.writeUInt32LE(0, 34);
  // Exif IFD at 38: DateTimeOriginal, ASCII 'YYYY:MM:DD HH:MM:SS\0' at 56.
  b.writeUInt16LE(1, 38);
  entry(40, 0x9003, 2, 20, 56);
  b.writeUInt32LE(0, 52);
  const t = takenAt.toISOString();
  b.write(`${t.slice(0, 4)}:${t.slice(5, 7)}:${t.slice(8, 10)} ${t.slice(11, 19)}\0`, 56, 'latin1');
  // GPS IFD at 76: refs inline, latitude at 130, longitude at 154 (three rationals each).
  const lat = gps?.lat ?? 0;
  const lon = gps?.lon ?? 0;
  b.writeUInt16LE(gps ? 4 : 0, 76);
  if (gps) {
    entry(78, 0x0001, 2, 2, 0);
    b.write(lat >= 0 ? 'N' : 'S', 86, 'latin1');
    entry(90, 0x0002, 5, 3, 130);
    entry(102, 0x0003, 2, 2, 0);
    b.write(lon >= 0 ? 'E' : 'W', 110, 'latin1');
    entry(114, 0x0004, 5, 3, 154);
  }
  b.writeUInt32LE(0, 126);
  const rationals = (at: number, degrees: number) => {
    const abs = Math.abs(degrees);
    const d = Math.floor(abs);
    const m = Math.floor((abs - d) * 60);
    const s = Math.round(((abs - d) * 60 - m) * 60 * 1000);
    for (const [i, [n, den]] of [
      [d, 1],
      [m, 1],
      [s, 1000],
    ].entries()) {
      b.writeUInt32LE(n!, at + i * 8);
      b.writeUInt32LE(den!, at + i * 8 + 4);
    }
  };
  rationals(130, lat);
  rationals(154, lon);
  return b;
}
