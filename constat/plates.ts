/**
 * Algerian registration plates: `serial-CYY-WW`.
 *   serial  1 to 6 digits
 *   C       vehicle category digit (table below)
 *   YY      year of first registration, two digits
 *   WW      wilaya code, 01 to 58 by default
 * Example `12345-115-16`: a car first registered in 2015, Algiers.
 *
 * The highest wilaya code is a parameter: 69 has been reported since late 2025 but is
 * unverified, so raising it must be configuration, not a code change. Input is matched as is
 * (no trimming or space-to-dash rewriting): the app normalises what the user types, and the
 * signed document must hold the exact value that was checked.
 */

export const DEFAULT_MAX_WILAYA = 58;

export const DZ_PLATE_PATTERN = /^\d{1,6}-[1-9]\d{2}-\d{2}$/;

export const DZ_PLATE_CATEGORIES: Readonly<Record<number, string>> = {
  1: 'car',
  2: 'truck',
  3: 'van',
  4: 'bus',
  5: 'road tractor',
  6: 'other tractor',
  7: 'special vehicle',
  8: 'trailer',
  9: 'motorcycle',
};

/** Foreign or temporary plates have no format we can check, only a sane length. */
export const FOREIGN_PLATE_MAX_LENGTH = 20;

export type PlateErrorCode = 'required' | 'invalid_format' | 'out_of_range';

export interface PlateError {
  ok: false;
  code: PlateErrorCode;
  reason: string;
}

export type DzPlate =
  | {
      ok: true;
      serial: string;
      category: number;
      categoryLabel: string;
      /** Four-digit year of first registration. */
      year: number;
      /** Two-digit wilaya code, e.g. '16'. */
      wilaya: string;
    }
  | PlateError;

export interface PlateOptions {
  maxWilaya?: number;
  /** Reference date to place the two-digit year in a century; defaults to now. */
  now?: Date;
}

export type WilayaCheck = { ok: true; code: number } | PlateError;

/** Checks a two-digit wilaya code ('01'..'58' by default). */
export function checkWilaya(code: string, maxWilaya = DEFAULT_MAX_WILAYA): WilayaCheck {
  if (!/^\d{2}$/.test(code)) {
    return {
      ok: false,
      code: 'invalid_format',
      reason: `wilaya code must be two digits, got "${code}"`,
    };
  }
  const n = Number(code);
  if (n < 1 || n > maxWilaya) {
    const max = String(maxWilaya).padStart(2, '0');
    return {
      ok: false,
      code: 'out_of_range',
      reason: `wilaya code ${code} is not within 01-${max}`,
    };
  }
  return { ok: true, code: n };
}

export function parseDzPlate(plate: string, options: PlateOptions = {}): DzPlate {
  if (!DZ_PLATE_PATTERN.test(plate)) {
    return {
      ok: false,
      code: 'invalid_format',
      reason: `"${plate}" is not an Algerian plate (serial-CYY-WW, e.g. 12345-115-16)`,
    };
  }
  const [serial = '', middle = '', wilaya = ''] = plate.split('-');
  const wilayaCheck = checkWilaya(wilaya, options.maxWilaya);
  if (!wilayaCheck.ok) return wilayaCheck;
  const category = Number(middle[0]);
  return {
    ok: true,
    serial,
    category,
    categoryLabel: DZ_PLATE_CATEGORIES[category] ?? 'unknown',
    year: fullYear(Number(middle.slice(1)), options.now ?? new Date()),
    wilaya,
  };
}

/** A two-digit year is in this century unless that would put it in the future. */
function fullYear(yy: number, now: Date): number {
  const thisYear = now.getUTCFullYear();
  const candidate = thisYear - (thisYear % 100) + yy;
  return candidate > thisYear ? candidate - 100 : candidate;
}

export type ForeignPlate = { ok: true; plate: string } | PlateError;

/** Any non-blank text up to 20 characters. */
export function checkForeignPlate(plate: string): ForeignPlate {
  if (plate.trim() === '') return { ok: false, code: 'required', reason: 'plate is empty' };
  if (plate.length > FOREIGN_PLATE_MAX_LENGTH) {
    return {
      ok: false,
      code: 'invalid_format',
      reason: `plate is longer than ${FOREIGN_PLATE_MAX_LENGTH} characters`,
    };
  }
  return { ok: true, plate };
}
