/**
 * "Is this content complete and valid enough to sign?"
 *
 * Content arrives from phones, so nothing about its shape is trusted: every rule reads plain
 * JSON and reports a wrong type as `invalid_format` rather than assuming it. Rules are tables of
 * small checks per field, plus a few section rules for checks that span fields (plate and its
 * country, policy period, ticked boxes and their declared count), so adding a rule is adding a
 * row. Errors come back in a stable order (meta, accident, vehicleA, vehicleB; table order
 * within), so the same content always yields the same list.
 */
import type { JsonObject, JsonValue } from './canonical-json.js';
import type { ConstatContent } from './constat-doc.js';
import { circumstanceKeys, getFormVersion, type FormVersion } from './form-versions.js';
import { checkForeignPlate, checkWilaya, DEFAULT_MAX_WILAYA, parseDzPlate } from './plates.js';

export type FieldErrorCode =
  'required' | 'invalid_format' | 'out_of_range' | 'unknown_value' | 'count_mismatch';

export interface FieldError {
  /** Dotted path from the content root, array items by index: 'accident.witnesses.0.name'. */
  path: string;
  code: FieldErrorCode;
  message: string;
}

export interface ValidateOptions {
  formVersion: string;
  knownInsurers: ReadonlySet<string>;
  /** Highest wilaya code accepted in places and plates; default 58. */
  maxWilaya?: number;
  now?: Date;
  /**
   * Time zone in which "today" is taken for the not-in-the-future check. The accident date is
   * the local date where it happened; judging it in UTC would reject an accident typed in
   * Algiers between midnight and 1 am. Default 'Africa/Algiers'.
   */
  timeZone?: string;
}

/** The witness section of the form has room for four. */
export const MAX_WITNESSES = 4;

/** A vehicle or place with no country recorded is Algerian: the form's home country. */
const DEFAULT_COUNTRY = 'DZ';

interface Context {
  formVersion: FormVersion | undefined;
  knownInsurers: ReadonlySet<string>;
  maxWilaya: number;
  /** 'YYYY-MM-DD' in the configured time zone. */
  today: string;
}

interface Problem {
  code: FieldErrorCode;
  message: string;
}

/** A check on one value; every check except `required` lets an absent value pass. */
type Check = (value: JsonValue | undefined, ctx: Context) => Problem | undefined;

/** Checks run in order; the first failure is the one reported for that field. */
interface FieldRule {
  field: string;
  checks: readonly Check[];
}

/** Problems found across several fields of one section, each with its field path. */
type SectionRule = (section: JsonObject, ctx: Context) => (Problem & { field: string })[];

// ---------------------------------------------------------------------------------------------
// Value helpers

function isAbsent(value: JsonValue | undefined): value is null | undefined {
  return value === undefined || value === null;
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isBlank(value: JsonValue | undefined): boolean {
  return isAbsent(value) || (typeof value === 'string' && value.trim() === '');
}

function getAt(section: JsonObject, field: string): JsonValue | undefined {
  let current: JsonValue | undefined = section;
  for (const key of field.split('.')) {
    if (!isObject(current)) return undefined;
    current = current[key];
  }
  return current;
}

function isValidIsoDate(value: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (!m) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  // Date.UTC rolls 2024-02-30 over to March; a real date survives the round trip.
  return (
    date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day
  );
}

// Building a DateTimeFormat is costly (it loads time zone data); one per zone is kept.
const dayFormats = new Map<string, Intl.DateTimeFormat>();

function localDate(now: Date, timeZone: string): string {
  let format = dayFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
    });
    dayFormats.set(timeZone, format);
  }
  const parts = format.formatToParts(now);
  const part = (type: string): string => parts.find((p) => p.type === type)?.value ?? '';
  return `${part('year')}-${part('month')}-${part('day')}`;
}

// ---------------------------------------------------------------------------------------------
// Checks

const required: Check = (v) =>
  isBlank(v) ? { code: 'required', message: 'is required' } : undefined;

const isString: Check = (v) =>
  isAbsent(v) || typeof v === 'string'
    ? undefined
    : { code: 'invalid_format', message: 'must be text' };

const isBoolean: Check = (v) =>
  isAbsent(v) || typeof v === 'boolean'
    ? undefined
    : { code: 'invalid_format', message: 'must be true or false' };

const isoDate: Check = (v) =>
  isAbsent(v) || (typeof v === 'string' && isValidIsoDate(v))
    ? undefined
    : { code: 'invalid_format', message: 'must be a date YYYY-MM-DD' };

// Runs after isoDate, so a present value is a valid date string and compares as text.
const notInFuture: Check = (v, ctx) =>
  typeof v === 'string' && v > ctx.today
    ? { code: 'out_of_range', message: `must not be after today (${ctx.today})` }
    : undefined;

const hhmm: Check = (v) =>
  isAbsent(v) || (typeof v === 'string' && /^([01]\d|2[0-3]):[0-5]\d$/.test(v))
    ? undefined
    : { code: 'invalid_format', message: 'must be a time HH:MM' };

const countryCode: Check = (v) =>
  isAbsent(v) || (typeof v === 'string' && /^[A-Z]{2}$/.test(v))
    ? undefined
    : { code: 'invalid_format', message: 'must be an ISO 3166 alpha-2 country code' };

// Deliberately loose: the address only has to be usable by an insurer to reach the person.
const email: Check = (v) =>
  isAbsent(v) || (typeof v === 'string' && /^[^\s@]+@[^\s@]+$/.test(v))
    ? undefined
    : { code: 'invalid_format', message: 'must be an e-mail address' };

const knownInsurer: Check = (v, ctx) =>
  typeof v !== 'string' || ctx.knownInsurers.has(v)
    ? undefined
    : { code: 'unknown_value', message: `"${v}" is not a known insurer` };

const count: Check = (v) =>
  isAbsent(v) || (typeof v === 'number' && Number.isInteger(v) && v >= 0)
    ? undefined
    : { code: 'invalid_format', message: 'must be a whole number' };

const requiredText = [required, isString] as const;

// ---------------------------------------------------------------------------------------------
// accident

const ACCIDENT_FIELDS: readonly FieldRule[] = [
  { field: 'date', checks: [required, isoDate, notInFuture] },
  { field: 'time', checks: [required, hhmm] },
  { field: 'place.country', checks: [countryCode] },
  { field: 'place.commune', checks: [isString] },
  { field: 'place.address', checks: [isString] },
  { field: 'injuries', checks: [required, isBoolean] },
  { field: 'otherVehicleDamage', checks: [isBoolean] },
  { field: 'objectDamage', checks: [isBoolean] },
];

/** In Algeria the wilaya is part of every address; elsewhere it does not exist. */
const placeRule: SectionRule = (section, ctx) => {
  const problems: (Problem & { field: string })[] = [];
  const country = getAt(section, 'place.country') ?? DEFAULT_COUNTRY;
  if (country === 'DZ') {
    const wilaya = getAt(section, 'place.wilaya');
    if (isBlank(wilaya)) {
      problems.push({ field: 'place.wilaya', code: 'required', message: 'is required' });
    } else if (typeof wilaya !== 'string') {
      problems.push({ field: 'place.wilaya', code: 'invalid_format', message: 'must be text' });
    } else {
      const check = checkWilaya(wilaya, ctx.maxWilaya);
      if (!check.ok)
        problems.push({ field: 'place.wilaya', code: check.code, message: check.reason });
    }
  }
  if (isBlank(getAt(section, 'place.address')) && isBlank(getAt(section, 'place.commune'))) {
    problems.push({
      field: 'place.address',
      code: 'required',
      message: 'an address or a commune is required',
    });
  }
  return problems;
};

function numberIn(
  obj: JsonObject,
  key: string,
  min: number,
  max: number,
  field: string,
  isRequired: boolean,
): (Problem & { field: string })[] {
  const v = obj[key];
  const path = `${field}.${key}`;
  if (isAbsent(v)) {
    return isRequired ? [{ field: path, code: 'required', message: 'is required' }] : [];
  }
  if (typeof v !== 'number')
    return [{ field: path, code: 'invalid_format', message: 'must be a number' }];
  if (v < min || v > max) {
    return [{ field: path, code: 'out_of_range', message: `must be between ${min} and ${max}` }];
  }
  return [];
}

const gpsRule: SectionRule = (section) => {
  const gps = getAt(section, 'place.gps');
  if (isAbsent(gps)) return [];
  if (!isObject(gps)) {
    return [
      { field: 'place.gps', code: 'invalid_format', message: 'must be { lat, lon, accuracyM }' },
    ];
  }
  return [
    ...numberIn(gps, 'lat', -90, 90, 'place.gps', true),
    ...numberIn(gps, 'lon', -180, 180, 'place.gps', true),
    ...numberIn(gps, 'accuracyM', 0, Number.MAX_VALUE, 'place.gps', false),
  ];
};

const witnessesRule: SectionRule = (section) => {
  const witnesses = section['witnesses'];
  if (isAbsent(witnesses)) return [];
  if (!Array.isArray(witnesses)) {
    return [{ field: 'witnesses', code: 'invalid_format', message: 'must be a list' }];
  }
  const problems: (Problem & { field: string })[] = [];
  if (witnesses.length > MAX_WITNESSES) {
    problems.push({
      field: 'witnesses',
      code: 'out_of_range',
      message: `at most ${MAX_WITNESSES} witnesses, got ${witnesses.length}`,
    });
  }
  witnesses.forEach((w, i) => {
    if (!isObject(w)) {
      problems.push({
        field: `witnesses.${i}`,
        code: 'invalid_format',
        message: 'must be a witness',
      });
    } else if (isBlank(w['name'])) {
      problems.push({ field: `witnesses.${i}.name`, code: 'required', message: 'is required' });
    } else if (typeof w['name'] !== 'string') {
      problems.push({
        field: `witnesses.${i}.name`,
        code: 'invalid_format',
        message: 'must be text',
      });
    }
  });
  return problems;
};

const ACCIDENT_SECTION_RULES: readonly SectionRule[] = [placeRule, gpsRule, witnessesRule];

// ---------------------------------------------------------------------------------------------
// vehicleA / vehicleB

const VEHICLE_FIELDS: readonly FieldRule[] = [
  { field: 'policyholder.lastName', checks: requiredText },
  { field: 'policyholder.firstName', checks: requiredText },
  { field: 'policyholder.email', checks: [isString, email] },
  { field: 'vehicle.make', checks: requiredText },
  { field: 'vehicle.plateCountry', checks: [countryCode] },
  { field: 'insurer.company', checks: [...requiredText, knownInsurer] },
  { field: 'insurer.policyNumber', checks: requiredText },
  { field: 'insurer.validFrom', checks: [isoDate] },
  { field: 'insurer.validTo', checks: [isoDate] },
  { field: 'insurer.coversOwnDamage', checks: [isBoolean] },
  { field: 'driver.lastName', checks: requiredText },
  { field: 'driver.firstName', checks: requiredText },
  { field: 'driver.licenceNumber', checks: requiredText },
  { field: 'driver.birthDate', checks: [isoDate] },
  { field: 'driver.licenceIssuedOn', checks: [isoDate] },
  { field: 'driver.licenceValidUntil', checks: [isoDate] },
  { field: 'circumstanceCount', checks: [required, count] },
];

/** Algerian plates have a checkable format; any other country's plate is free text. */
const plateRule: SectionRule = (section, ctx) => {
  const plate = getAt(section, 'vehicle.plate');
  const field = 'vehicle.plate';
  if (isBlank(plate)) return [{ field, code: 'required', message: 'is required' }];
  if (typeof plate !== 'string')
    return [{ field, code: 'invalid_format', message: 'must be text' }];
  const country = getAt(section, 'vehicle.plateCountry') ?? DEFAULT_COUNTRY;
  const result =
    country === 'DZ' ? parseDzPlate(plate, { maxWilaya: ctx.maxWilaya }) : checkForeignPlate(plate);
  return result.ok ? [] : [{ field, code: result.code, message: result.reason }];
};

const policyPeriodRule: SectionRule = (section) => {
  const from = getAt(section, 'insurer.validFrom');
  const to = getAt(section, 'insurer.validTo');
  if (typeof from !== 'string' || typeof to !== 'string') return [];
  if (!isValidIsoDate(from) || !isValidIsoDate(to) || from <= to) return [];
  return [
    {
      field: 'insurer.validTo',
      code: 'out_of_range',
      message: `policy ends (${to}) before it starts (${from})`,
    },
  ];
};

/**
 * Boxes must exist on the form version, a tick is stored as `true` (an untick deletes the key),
 * and the declared count must equal the ticks: the count is what stops a box being added later.
 */
const circumstancesRule: SectionRule = (section, ctx) => {
  const boxes = section['circumstances'] ?? {};
  if (!isObject(boxes)) {
    return [
      { field: 'circumstances', code: 'invalid_format', message: 'must be a map of box ids' },
    ];
  }
  const problems: (Problem & { field: string })[] = [];
  const valid = ctx.formVersion ? circumstanceKeys(ctx.formVersion) : undefined;
  let ticked = 0;
  for (const [id, value] of Object.entries(boxes)) {
    if (valid && !valid.has(id)) {
      problems.push({
        field: `circumstances.${id}`,
        code: 'unknown_value',
        message: `box ${id} does not exist on form ${ctx.formVersion?.id}`,
      });
    }
    if (value === true) ticked++;
    else {
      problems.push({
        field: `circumstances.${id}`,
        code: 'invalid_format',
        message: 'a ticked box is stored as true; an unticked box is removed',
      });
    }
  }
  const declared = section['circumstanceCount'];
  // A missing or malformed count is already reported by the field rules.
  if (
    typeof declared === 'number' &&
    Number.isInteger(declared) &&
    declared >= 0 &&
    declared !== ticked
  ) {
    problems.push({
      field: 'circumstanceCount',
      code: 'count_mismatch',
      message: `declares ${declared} boxes but ${ticked} are ticked`,
    });
  }
  return problems;
};

const impactPointRule: SectionRule = (section) => {
  const point = section['impactPoint'];
  if (isAbsent(point)) return [];
  if (!isObject(point)) {
    return [{ field: 'impactPoint', code: 'invalid_format', message: 'must be { x, y }' }];
  }
  const problems = [
    ...numberIn(point, 'x', 0, 1, 'impactPoint', true),
    ...numberIn(point, 'y', 0, 1, 'impactPoint', true),
  ];
  const side = point['side'];
  if (!isAbsent(side) && typeof side !== 'string') {
    problems.push({ field: 'impactPoint.side', code: 'invalid_format', message: 'must be text' });
  }
  return problems;
};

const VEHICLE_SECTION_RULES: readonly SectionRule[] = [
  plateRule,
  policyPeriodRule,
  circumstancesRule,
  impactPointRule,
];

// ---------------------------------------------------------------------------------------------

const SECTIONS: readonly {
  root: keyof ConstatContent;
  fields: readonly FieldRule[];
  rules: readonly SectionRule[];
}[] = [
  { root: 'accident', fields: ACCIDENT_FIELDS, rules: ACCIDENT_SECTION_RULES },
  { root: 'vehicleA', fields: VEHICLE_FIELDS, rules: VEHICLE_SECTION_RULES },
  { root: 'vehicleB', fields: VEHICLE_FIELDS, rules: VEHICLE_SECTION_RULES },
];

function checkFields(section: JsonObject, rules: readonly FieldRule[], ctx: Context) {
  const problems: (Problem & { field: string })[] = [];
  for (const { field, checks } of rules) {
    const value = getAt(section, field);
    for (const check of checks) {
      const problem = check(value, ctx);
      if (problem) {
        problems.push({ field, ...problem });
        break;
      }
    }
  }
  return problems;
}

export function validateContent(content: ConstatContent, opts: ValidateOptions): FieldError[] {
  const formVersion = getFormVersion(opts.formVersion);
  const ctx: Context = {
    formVersion,
    knownInsurers: opts.knownInsurers,
    maxWilaya: opts.maxWilaya ?? DEFAULT_MAX_WILAYA,
    today: localDate(opts.now ?? new Date(), opts.timeZone ?? 'Africa/Algiers'),
  };
  const errors: FieldError[] = [];
  if (!formVersion) {
    errors.push({
      path: 'meta.formVersion',
      code: 'unknown_value',
      message: `unknown form version "${opts.formVersion}"`,
    });
  }
  for (const { root, fields, rules } of SECTIONS) {
    const section: JsonObject = isObject(content[root]) ? content[root] : {};
    const problems = [
      ...checkFields(section, fields, ctx),
      ...rules.flatMap((r) => r(section, ctx)),
    ];
    for (const { field, code, message } of problems) {
      errors.push({ path: `${root}.${field}`, code, message });
    }
  }
  return errors;
}
