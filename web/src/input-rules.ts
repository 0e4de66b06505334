/**
 * Pure rules for what the driver types, kept apart from the DOM so they are unit-tested.
 * The plate rule itself is the domain's (constat/plates.ts): the app checks exactly what the
 * server will check before signing.
 */
import { parseDzPlate, checkForeignPlate } from '../../constat/plates.js';

/**
 * What the app writes for a typed Algerian plate: spaces, dots and slashes become dashes,
 * anything that is neither a digit nor a dash is dropped. The server checks the stored value
 * as is, so normalising belongs here.
 */
export function normalisePlate(input: string, country: string): string {
  if (country !== 'DZ') return input.slice(0, 40);
  return input
    .replace(/[\s./_]+/g, '-')
    .replace(/[^0-9-]/g, '')
    .replace(/-{2,}/g, '-')
    .replace(/^-/, '')
    .slice(0, 14);
}

export type PlateVerdict =
  | { state: 'empty' }
  | { state: 'partial'; message: string }
  | { state: 'valid'; message: string; category?: number; year?: number; wilaya?: string }
  | { state: 'invalid'; message: string };

/** Feedback while typing: a prefix of a valid plate is "partial", not an error. */
export function checkPlateAsTyped(plate: string, country: string): PlateVerdict {
  if (plate === '') return { state: 'empty' };
  if (country !== 'DZ') {
    const foreign = checkForeignPlate(plate);
    return foreign.ok
      ? { state: 'valid', message: plate }
      : { state: 'invalid', message: foreign.reason };
  }
  const parsed = parseDzPlate(plate);
  if (parsed.ok) {
    return {
      state: 'valid',
      message: `${parsed.categoryLabel}, ${parsed.year}, wilaya ${parsed.wilaya}`,
      category: parsed.category,
      year: parsed.year,
      wilaya: parsed.wilaya,
    };
  }
  if (/^\d{1,6}(-(\d{0,3}|[1-9]\d{2}-\d?))?$/.test(plate) && !/^\d{1,6}-0/.test(plate)) {
    return { state: 'partial', message: 'serial-CYY-WW, e.g. 12345-115-16' };
  }
  return { state: 'invalid', message: parsed.reason };
}

/**
 * The smallest edit turning `before` into `after`: one deletion and one insertion at the
 * first differing position. Applied to a Y.Text, it lets two drivers typing in one field at
 * once merge character by character instead of one overwriting the other.
 */
export function textEdit(
  before: string,
  after: string,
): { index: number; remove: number; insert: string } | undefined {
  if (before === after) return undefined;
  let start = 0;
  const max = Math.min(before.length, after.length);
  while (start < max && before.charCodeAt(start) === after.charCodeAt(start)) start++;
  let end = 0;
  while (
    end < max - start &&
    before.charCodeAt(before.length - 1 - end) === after.charCodeAt(after.length - 1 - end)
  ) {
    end++;
  }
  // Never split a surrogate pair: move the cut points outside it.
  if (start > 0 && isHighSurrogate(after.charCodeAt(start - 1))) start--;
  if (end > 0 && isLowSurrogate(after.charCodeAt(after.length - end))) end--;
  return {
    index: start,
    remove: before.length - start - end,
    insert: after.slice(start, after.length - end),
  };
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** Which side of a top-view vehicle (front up) a tap at x, y in 0..1 is nearest. */
export function impactSide(x: number, y: number): 'front' | 'rear' | 'left' | 'right' {
  const distances = { front: y, rear: 1 - y, left: x, right: 1 - x };
  return (Object.entries(distances).sort((a, b) => a[1] - b[1])[0]?.[0] ?? 'front') as
    'front' | 'rear' | 'left' | 'right';
}

/** base64 of bytes, and hex, without Node's Buffer (this runs in the browser). */
export function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The join code in a scanned QR payload (`constat://join?code=…`) or typed text. */
export function joinCodeOf(text: string): string | undefined {
  const trimmed = text.trim().replace(/\s+/g, '');
  if (/^\d{6}$/.test(trimmed)) return trimmed;
  const match = /^constat:\/\/join\?code=(\d{6})$/.exec(trimmed);
  return match?.[1];
}
