/**
 * The fields that matter, found in the OCR text of one paper. Tesseract's Arabic output puts
 * direction marks in the text and reorders mixed lines (numbers before words, the French label
 * after its Arabic neighbour), so nothing here relies on the position of a value: dates,
 * numbers and plates are found by pattern, and assigned to a field by a label on the same line
 * (French or Arabic), else by their order in time (a birth date comes before an issue date).
 */
import { COMPANIES } from '../../integrations/companies.js';

export type PaperKind = 'licence' | 'registration' | 'insurance_certificate';
export const PAPER_KINDS: readonly PaperKind[] = [
  'licence',
  'registration',
  'insurance_certificate',
];

/** Field → value as read (dates as YYYY-MM-DD, plates as serial-CYY-WW, insurer as its uid). */
export type ReadFields = Record<string, string>;

const BIDI_MARKS = /[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]/g;

/** OCR text with direction marks removed and Arabic-Indic digits as Latin ones. */
export function cleanText(text: string): string {
  return text
    .replace(BIDI_MARKS, '')
    .replace(/[\u0660-\u0669]/g, (d) => String(d.charCodeAt(0) - 0x0660))
    .replace(/[\u06f0-\u06f9]/g, (d) => String(d.charCodeAt(0) - 0x06f0))
    .replace(/[ \t]+/g, ' ');
}

interface Found {
  value: string;
  line: string;
}

const DATE = /(?<!\d)(\d{1,2})\s?[/.-]\s?(\d{1,2})\s?[/.-]\s?((?:19|20)\d{2})(?!\d)/g;

function datesIn(lines: string[]): Found[] {
  const out: Found[] = [];
  for (const line of lines) {
    for (const m of line.matchAll(DATE)) {
      const [d, mo, y] = [Number(m[1]), Number(m[2]), m[3]!];
      if (d < 1 || d > 31 || mo < 1 || mo > 12) continue;
      out.push({
        value: `${y}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}`,
        line,
      });
    }
  }
  return out;
}

/** The first date on a line carrying one of the labels. */
function labelledDate(dates: Found[], labels: RegExp, taken: Set<string>): string | undefined {
  const hit = dates.find((d) => labels.test(d.line) && !taken.has(d.value));
  if (hit) taken.add(hit.value);
  return hit?.value;
}

/** Algerian plates: serial (1–6 digits), category and year (3), wilaya (2); separators vary. */
const PLATE =
  /(?<!\d)(\d(?:\s?\d){0,5})\s?[-–—_.\s]\s?([1-9]\s?\d\s?\d)\s?[-–—_.\s]\s?(\d\s?\d)(?!\d)/;

export function plateIn(text: string): string | undefined {
  for (const line of text.split('\n')) {
    const m = line.replace(DATE, ' ').match(PLATE);
    if (m) return [m[1], m[2], m[3]].map((p) => p!.replace(/\s/g, '')).join('-');
  }
  return undefined;
}

/** The value after a label on the same line, up to the end or a script change. */
function after(lines: string[], label: RegExp, value: RegExp): string | undefined {
  for (const line of lines) {
    const at = line.search(label);
    if (at < 0) continue;
    const rest = line.slice(at).replace(label, '');
    const m = rest.match(value);
    if (m?.[1]) return m[1].trim().replace(/\s+/g, ' ');
  }
  return undefined;
}

const LATIN_WORDS = /^\s*[:.;,]?\s*([A-ZÀ-Ý][A-ZÀ-Ý' -]*[A-ZÀ-Ý])/;
const ARABIC_WORDS =
  /^\s*[:.;,]?\s*([\u0621-\u064a][\u0621-\u064a\u064b-\u065f ]*[\u0621-\u064a\u064b-\u065f])/;
const CODE = /^\s*[:.;,]?\s*([A-Z0-9][A-Z0-9/ -]{2,30}[A-Z0-9])/i;

function licence(text: string, lines: string[]): ReadFields {
  const out: ReadFields = {};
  const dates = datesIn(lines);
  const taken = new Set<string>();
  const birth = labelledDate(dates, /n[ée]e?\s+le|naissance|الميلاد|3\s*\./i, taken);
  const issued = labelledDate(dates, /d[ée]livr|الإصدار|الاصدار|4a/i, taken);
  const until = labelledDate(dates, /valable|expir|غاية|صالحة|4b/i, taken);
  // Unlabelled dates by order in time: birth, issue, expiry.
  const rest = dates
    .map((d) => d.value)
    .filter((v) => !taken.has(v))
    .sort();
  const set = (k: string, v: string | undefined) => v && (out[k] = v);
  set('birthDate', birth ?? (issued && until ? rest[0] : undefined));
  set('issuedOn', issued);
  set('validUntil', until ?? (rest.length > 0 ? rest[rest.length - 1] : undefined));
  // The licence number: the longest run of 8–12 digits that is not part of a date.
  const numbers = [...text.replace(DATE, ' ').matchAll(/(?<![\d/])(\d(?:\s?\d){7,11})(?![\d/])/g)]
    .map((m) => m[1]!.replace(/\s/g, ''))
    .sort((a, b) => b.length - a.length);
  set('number', numbers[0]);
  set('lastName', after(lines, /(?<!\p{L})nom(?!\p{L})/iu, LATIN_WORDS));
  set('firstName', after(lines, /pr[ée]noms?/i, LATIN_WORDS));
  set('lastNameAr', after(lines, /اللقب/, ARABIC_WORDS));
  set('firstNameAr', after(lines, /الاسم/, ARABIC_WORDS));
  set(
    'category',
    after(
      lines,
      /cat[ée]gories?/i,
      /^\s*[:.;,]?\s*((?:[ABCDE][1E]?)(?:\s*[,/ ]\s*[ABCDE][1E]?)*)\b/,
    ),
  );
  return out;
}

function registration(text: string, lines: string[]): ReadFields {
  const out: ReadFields = {};
  const set = (k: string, v: string | undefined) => v && (out[k] = v);
  set('plate', plateIn(text));
  set('make', after(lines, /marque/i, LATIN_WORDS));
  // A stray character the OCR adds after the model ("SYMBOL 0") is not part of it.
  set('model', after(lines, /mod[èe]le|(?<!\p{L})type(?!\p{L})/iu, CODE)?.replace(/(\s\S)+$/, ''));
  const year = lines
    .filter((l) => /ann[ée]e|سنة/i.test(l))
    .map((l) => l.replace(DATE, ' ').match(/(?<!\d)((?:19|20)\d{2})(?!\d)/)?.[1])
    .find(Boolean);
  set('year', year);
  return out;
}

/** Short names as printed on the certificates ("SAA", "Trust", "AXA"), longest first. */
const INSURER_NAMES = COMPANIES.flatMap((c) => {
  const short = c.name.split(/\s+—\s+|\s+/)[0]!;
  return [{ uid: c.uid, name: short }];
}).sort((a, b) => b.name.length - a.name.length);

function insurerIn(lines: string[]): string | undefined {
  const labelled = lines.filter((l) => /assureur|المؤمن(?!\s*له)|compagnie/i.test(l));
  for (const pool of [labelled, lines]) {
    for (const line of pool) {
      const hit = INSURER_NAMES.find(({ name }) =>
        new RegExp(`(?<![\\p{L}\\d])${name.replace(/[^\p{L}\d]/gu, '')}(?![\\p{L}\\d])`, 'iu').test(
          line,
        ),
      );
      if (hit) return hit.uid;
    }
  }
  return undefined;
}

function insuranceCertificate(text: string, lines: string[]): ReadFields {
  const out: ReadFields = {};
  const set = (k: string, v: string | undefined) => v && (out[k] = v);
  set('insurer', insurerIn(lines));
  set('policyNumber', after(lines, /police\s*(?:n\s?[°º o]?)?|رقم الوثيقة/i, CODE));
  const dates = datesIn(lines);
  const taken = new Set<string>();
  const from = labelledDate(dates, /(?<!\p{L})du(?!\p{L})|من|effet/iu, taken);
  const to = labelledDate(dates, /(?<!\p{L})au(?!\p{L})|إلى|الى|[ée]ch[ée]ance/iu, taken);
  const rest = dates
    .map((d) => d.value)
    .filter((v) => !taken.has(v))
    .sort();
  set('validFrom', from ?? rest[0]);
  set('validTo', to ?? (rest.length > 1 ? rest[rest.length - 1] : undefined));
  set('plate', plateIn(text));
  return out;
}

const READERS: Record<PaperKind, (text: string, lines: string[]) => ReadFields> = {
  licence,
  registration,
  insurance_certificate: insuranceCertificate,
};

export function extractFields(kind: PaperKind, ocrText: string): ReadFields {
  const text = cleanText(ocrText);
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return READERS[kind](text, lines);
}
