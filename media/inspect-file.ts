/**
 * What the bytes of an uploaded file are: its SHA-256, its real type by magic bytes (the
 * `file-type` sniffer), and the EXIF capture date and position (`exifr`). Nothing is written
 * back: the stored original stays byte for byte what the device hashed.
 */
import { createHash } from 'node:crypto';
import type { ExifFacts } from './attachment-records.js';

export interface FileFacts {
  sha256: string;
  byteSize: number;
  /** MIME type the bytes say, or undefined when unrecognised. */
  sniffedType: string | undefined;
  exif: ExifFacts | null;
}

/** HEIC and HEIF are one container; phones label either way, so each stands for the other. */
const SAME_TYPE: Record<string, readonly string[]> = {
  'image/heic': ['image/heic', 'image/heif'],
  'image/heif': ['image/heic', 'image/heif'],
};

export function typeMatches(declared: string, sniffed: string | undefined): boolean {
  if (!sniffed) return false;
  return (SAME_TYPE[declared] ?? [declared]).includes(sniffed);
}

export async function inspectFile(bytes: Uint8Array): Promise<FileFacts> {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  // Loaded at the first upload, not with every server.
  const { fileTypeFromBuffer } = await import('file-type');
  const type = await fileTypeFromBuffer(bytes).catch(() => undefined);
  return {
    sha256,
    byteSize: bytes.byteLength,
    sniffedType: type?.mime,
    exif: type?.mime === 'application/pdf' ? null : await readExif(bytes),
  };
}

const EXIF_DATE = /^(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;
const OFFSET = /^[+-]\d{2}:\d{2}$/;

/** Capture date and GPS position; a file without EXIF, or a broken block, gives null. */
async function readExif(bytes: Uint8Array): Promise<ExifFacts | null> {
  let tags: Record<string, unknown> | undefined;
  const { default: exifr } = await import('exifr');
  try {
    tags = (await exifr.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), {
      tiff: true,
      exif: true,
      gps: true,
      // Raw strings: exifr would turn the zone-less EXIF date into a Date in the server's zone.
      reviveValues: false,
      pick: ['DateTimeOriginal', 'OffsetTimeOriginal', 'latitude', 'longitude'],
    })) as Record<string, unknown> | undefined;
  } catch {
    return null; // a malformed EXIF block is the file's business, not an error of ours
  }
  if (!tags) return null;
  const facts: ExifFacts = {};
  const date =
    typeof tags.DateTimeOriginal === 'string' ? EXIF_DATE.exec(tags.DateTimeOriginal) : null;
  if (date) {
    const offset =
      typeof tags.OffsetTimeOriginal === 'string' && OFFSET.test(tags.OffsetTimeOriginal)
        ? tags.OffsetTimeOriginal
        : '';
    // Without an offset the date is the camera's local time, kept as such (no zone).
    facts.takenAt = `${date[1]}-${date[2]}-${date[3]}T${date[4]}:${date[5]}:${date[6]}${offset}`;
  }
  const { latitude: lat, longitude: lon } = tags;
  if (
    typeof lat === 'number' &&
    typeof lon === 'number' &&
    Number.isFinite(lat) &&
    Number.isFinite(lon)
  ) {
    facts.gps = { lat: Math.round(lat * 1e6) / 1e6, lon: Math.round(lon * 1e6) / 1e6 };
  }
  return facts.takenAt || facts.gps ? facts : null;
}
