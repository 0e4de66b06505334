/**
 * The OCR function's pure parts: fields found by pattern in text as Tesseract gives it for
 * mixed French and Arabic lines (direction marks, numbers before words, labels after values,
 * Arabic-Indic digits); normalised matching (case, accents, Arabic letter variants and
 * diacritics, digits, plate separators); the verdict with both values; the fraud signal fed
 * from the mismatches.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanText, extractFields, plateIn } from '../ai/ocr/extract.js';
import { compare, normaliseValue, similarity } from '../ai/ocr/match.js';
import { ocrMismatchLines } from '../ai/ocr/ocr-function.js';
import { scoreFraud } from '../ai/fraud/scorer.js';
import { loadRuleSet } from '../ai/fraud/rules.js';
import { viewOf } from '../ai/constat-view.js';
import { finalizedData } from './fixtures/finalized.js';
import type { VehicleSection } from '../constat/constat-doc.js';

const test = suite('ai ocr: extraction and matching');

// What the bilingual model printed for a licence (kept as it came, marks included).
const LICENCE_TEXT = [
  'RÉPUBLIQUE ALGÉRIENNE DÉMOCRATIQUE ET POPULAIRE',
  '\u200fالجمهورية الجزائرية الديمقراطية الشعبية\u200e',
  'PERMIS DE CONDUIRE \u200fرخصة السياقة\u200e',
  'اللقب : بن علي \u200eNom : BENALI\u200f .1',
  'الاسم : كريم \u200ePrénom : KARIM\u200f .2',
  'تاريخ الميلاد 02/07/1988 : \u200eNé le\u200f .3',
  'تاريخ الإصدار ١٤/٠٣/٢٠١٩ : \u200eDélivré le\u200f .4a',
  "صالحة إلى غاية 13/03/2029 : \u200eValable jusqu'au\u200f .4b",
  'رقم الرخصة 160823457 : \u200eN° du permis\u200f .5',
  '9. Catégories : B',
].join('\n');

test('direction marks go, Arabic-Indic digits become Latin', () => {
  assert.is(cleanText('\u200f١٤/٠٣/۲۰۱۹\u200e'), '14/03/2019');
});

test('a licence: dates by label (not position), number by pattern, names in both scripts', () => {
  assert.equal(extractFields('licence', LICENCE_TEXT), {
    birthDate: '1988-07-02',
    issuedOn: '2019-03-14',
    validUntil: '2029-03-13',
    number: '160823457',
    lastName: 'BENALI',
    firstName: 'KARIM',
    lastNameAr: 'بن علي',
    firstNameAr: 'كريم',
    category: 'B',
  });
});

test('unlabelled dates fall back to their order in time', () => {
  const read = extractFields('licence', '2029-03-13\n13/03/2029 02/07/1988 14/03/2019\n');
  assert.is(read.issuedOn, undefined);
  assert.is(read.validUntil, '2029-03-13');
});

test('plates with any separator, never a date', () => {
  assert.is(plateIn('Immatriculation : 01 234-116-16'), '01234-116-16');
  assert.is(plateIn('رقم التسجيل 12345 115 31'), '12345-115-31');
  assert.is(plateIn('Valable du : 10/01/2025'), undefined);
});

test('a registration card and an insurance certificate', () => {
  const reg = extractFields(
    'registration',
    'A. Immatriculation : 01234-116-16\n‎0.1 Marque : RENAULT ‏العلامة‎\n‎0.2 Type : SYMBOL 0 ‏الطراز‎\nسنة الصنع 2016 : ‎Année‏ .8',
  );
  assert.equal(reg, { plate: '01234-116-16', make: 'RENAULT', model: 'SYMBOL', year: '2016' });
  const cert = extractFields(
    'insurance_certificate',
    'Assureur : SAA Assurances\nPolice N° : AUTO-16-0452187\nValable du : 10/01/2025\nau : 09/01/2026\nImmatriculation : 01234-116-16',
  );
  assert.equal(cert, {
    insurer: 'saa',
    policyNumber: 'AUTO-16-0452187',
    validFrom: '2025-01-10',
    validTo: '2026-01-09',
    plate: '01234-116-16',
  });
});

test('normalisation: case, accents, Arabic variants and diacritics, digits, separators', () => {
  assert.is(normaliseValue('Benali', 'name'), normaliseValue('BENALI', 'name'));
  assert.is(normaliseValue('Hélène', 'name'), 'helene');
  assert.is(normaliseValue('أَحْمَد', 'name'), normaliseValue('احمد', 'name'));
  assert.is(normaliseValue('فاطمة', 'name'), normaliseValue('فاطمه', 'name'));
  assert.is(normaliseValue('٠١٢٣٤-١١٦-١٦', 'id'), '0123411616');
  assert.is(normaliseValue('01234 116 16', 'id'), normaliseValue('01234-116-16', 'id'));
  assert.is(normaliseValue('14/03/2019', 'date'), '2019-03-14');
  assert.is(normaliseValue('2019-03-14', 'date'), '2019-03-14');
});

test('similarity is 1 − edit distance over length', () => {
  assert.is(similarity('benali', 'benali'), 1);
  assert.is(similarity('benali', 'benaly'), 1 - 1 / 6);
  assert.is(similarity('', 'x'), 0);
});

const typed: VehicleSection = {
  driver: {
    lastName: 'Benali',
    firstName: 'كريم',
    licenceNumber: '160823457',
    licenceCategory: 'B',
    licenceIssuedOn: '2019-03-14',
    licenceValidUntil: '2029-03-13',
    birthDate: '1988-07-02',
  },
};

test('verified: every field typed matches what the paper says (a name in either script)', () => {
  const result = compare('licence', extractFields('licence', LICENCE_TEXT), typed);
  assert.is(result.verdict, 'verified');
  assert.is(result.fields.length, 7);
  assert.ok(result.fields.every((f) => f.match && f.similarity === 1));
});

test('a deliberate mismatch names the field and both values', () => {
  const wrong = { driver: { ...typed.driver, licenceNumber: '160823475' } };
  const result = compare('licence', extractFields('licence', LICENCE_TEXT), wrong);
  assert.is(result.verdict, 'mismatch');
  const bad = result.fields.filter((f) => !f.match);
  assert.equal(bad, [
    { field: 'number', typed: '160823475', read: '160823457', similarity: 0.778, match: false },
  ]);
});

test('a key field on the paper that the party left out is a mismatch', () => {
  const result = compare('registration', { plate: '01234-116-16' }, { vehicle: {} });
  assert.is(result.verdict, 'mismatch');
  assert.equal(result.fields[0], {
    field: 'plate',
    typed: null,
    read: '01234-116-16',
    similarity: 0,
    match: false,
  });
});

test('no key field read: unreadable, with why', () => {
  const result = compare('insurance_certificate', { insurer: 'saa' }, {});
  assert.is(result.verdict, 'unreadable');
  assert.match(result.reason ?? '', /policyNumber/);
});

test('mismatches feed the fraud scorer’s ocr_mismatch signal, with both values', () => {
  const lines = ocrMismatchLines([
    {
      verdict: 'mismatch',
      role: 'A',
      document: 'licence',
      fields: [{ field: 'number', typed: '1', read: '2', similarity: 0, match: false }],
    },
    { verdict: 'verified', role: 'B', document: 'registration', fields: [] },
  ]);
  assert.equal(lines, ['A licence number: typed "1", read "2"']);
  const rules = loadRuleSet();
  const view = viewOf(finalizedData());
  const base = scoreFraud({ view, history: [] }, rules);
  const fed = scoreFraud({ view, history: [], ocrMismatches: lines }, rules);
  const signal = fed.signals.find((s) => s.name === 'ocr_mismatch');
  assert.ok(signal, 'the signal fires');
  assert.match(signal.reason, 'typed "1", read "2"');
  assert.ok(fed.score > base.score);
  assert.is(ocrMismatchLines(undefined).length, 0);
});

test.run();
