/**
 * The cost estimator, pure: every table lookup (segment by make/model, depreciation by age
 * read from the plate, rates by wilaya), French and Arabic damage text to zones and
 * severities, the arithmetic of a line and of VAT, and the fallbacks that must never throw.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync, cpSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CostTableError, loadCostTables, DEFAULT_COST_TABLES_DIR } from '../ai/cost/tables.js';
import { readDamage } from '../ai/cost/damage.js';
import { depreciationRate, estimateVehicle, ratesFor, segmentOf } from '../ai/cost/estimator.js';
import type { VehicleSection } from '../constat/constat-doc.js';
import { completeVehicle } from './fixtures/constat.js';

const tables = loadCostTables();
const AT = new Date('2025-03-14T17:45:00Z');
const zones = (text: string, side?: 'front' | 'rear' | 'left' | 'right') =>
  readDamage(text, side, tables)
    .zones.map((z) => `${z.part}:${z.side}:${z.severity}`)
    .sort();

test('segment from make and model, case and accents ignored; unknown make is flagged', () => {
  assert.equal(segmentOf('Renault', 'Symbol', tables), { segment: 'B', known: true });
  assert.equal(segmentOf('TOYOTA', 'Hilux', tables), { segment: 'LCV', known: true });
  assert.equal(segmentOf('Chery', 'Tiggo 2 Pro', tables), { segment: 'SUV', known: true });
  // A known make with an unknown model takes the make's default.
  assert.equal(segmentOf('Peugeot', 'Rifter', tables), { segment: 'B', known: true });
  assert.equal(segmentOf('Zastava', 'Yugo', tables), { segment: 'C', known: false });
  assert.equal(segmentOf(undefined, undefined, tables), { segment: 'C', known: false });
});

test('depreciation bracket by age', () => {
  assert.is(depreciationRate(0, tables), 0);
  assert.is(depreciationRate(1, tables), 0);
  assert.is(depreciationRate(2, tables), 0.1);
  assert.is(depreciationRate(4, tables), 0.2);
  assert.is(depreciationRate(10, tables), 0.4);
  assert.is(depreciationRate(40, tables), 0.5);
});

test('labour and paint rates by wilaya, default elsewhere', () => {
  assert.equal(ratesFor('16', tables), { labour: 2600, paint: 2900, known: true });
  assert.equal(ratesFor('31', tables), { labour: 2300, paint: 2600, known: true });
  assert.equal(ratesFor('57', tables), { labour: 1800, paint: 2000, known: false });
  assert.equal(ratesFor(undefined, tables), { labour: 1800, paint: 2000, known: false });
});

test('French damage text: parts, sides and severities', () => {
  assert.equal(zones('Pare-chocs avant enfoncé'), ['bumper:front:medium']);
  assert.equal(zones('Aile droite rayée'), ['wing:right:light']);
  assert.equal(zones('Rétroviseur gauche arraché'), ['mirror:left:heavy']);
  assert.equal(zones('Portière conducteur enfoncée'), ['door:left:medium']);
  assert.equal(zones('portière avant droite enfoncée'), ['door:right:medium']);
  // A severity said once at the end covers the parts listed before it; lamps and boots have
  // their own side.
  assert.equal(zones('Coffre et feu arrière gauche cassés', 'left'), [
    'boot:rear:heavy',
    'taillamp:rear:heavy',
  ]);
  // The worst word of a clause wins.
  assert.equal(zones('capot rayé et enfoncé'), ['bonnet:front:medium']);
});

test('Arabic damage text: parts, sides and severities, with article, conjunction and diacritics', () => {
  assert.equal(zones('الصدام الأمامي مكسور والمصباح الأمامي محطم'), [
    'bumper:front:heavy',
    'headlamp:front:heavy',
  ]);
  assert.equal(zones('باب السائق مخدوش'), ['door:left:light']);
  assert.equal(zones('الجناح الأيمن منبعج'), ['wing:right:medium']);
  // With tashkil (diacritics) and a taa marbuta spelling variant.
  assert.equal(zones('المِرآة اليُسرى مكسورة'), ['mirror:left:heavy']);
  assert.equal(zones('صندوق السيارة مبعوج'), ['boot:rear:medium']);
});

test('a side or a severity without a named part counts the side’s first panel', () => {
  assert.equal(zones('choc arrière léger, rayé'), ['bumper:rear:light']);
  assert.equal(zones('كل الجهة اليمنى مخدوشة'), ['door:right:light']);
});

test('unrecognised or empty text falls back to the impact point', () => {
  const unknown = readDamage('xyz qwerty', 'rear', tables);
  assert.is(unknown.understood, false);
  assert.equal(
    unknown.zones.map((z) => `${z.part}:${z.side}:${z.from}`),
    ['bumper:rear:impact'],
  );
  const none = readDamage(undefined, undefined, tables);
  assert.equal(
    none.zones.map((z) => `${z.part}:${z.side}:${z.from}`),
    ['bumper:front:default'],
  );
});

test('a replace line: depreciated part, labour and paint at the wilaya rates, materials; VAT 19 %', () => {
  // 2015 car (plate …-115-16) in 2025: 10 years, 40 % off the part; Algiers rates.
  const e = estimateVehicle(
    {
      role: 'A',
      vehicle: completeVehicle('A', {
        visibleDamage: 'Rétroviseur gauche arraché',
      }) as VehicleSection,
      wilaya: '16',
      at: AT,
    },
    tables,
  );
  assert.is(e.vehicleAgeYears, 10);
  assert.is(e.segment, 'B');
  assert.is(e.lines.length, 1);
  const line = e.lines[0]!;
  assert.is(line.operation, 'replace');
  assert.is(line.depreciationRate, 0.4);
  const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 0.01, `${a} ≠ ${b}`);
  close(line.partsAmount, 9000 * 0.6);
  close(line.labourAmount, 0.5 * 2600);
  close(line.paintAmount, 0.7 * 2900);
  close(line.materialsAmount, 0.7 * 1600);
  close(line.amount, 5400 + 1300 + 2030 + 1120);
  close(e.vat, line.amount * 0.19);
  assert.is(e.amount, Math.round((line.amount * 1.19) / 100) * 100);
  assert.ok(e.low < e.amount && e.amount < e.high);
  assert.is(e.currency, 'DZD');
  assert.ok(e.confidence >= 0.8, `confidence ${e.confidence}`);
  assert.equal(e.tables, [
    'segments-2026.12-1',
    'parts-2026.12-1',
    'rates-2026.12-1',
    'vetuste-2026.12-1',
    'estimate-2026.12-1',
    'keywords-2026.12-1',
  ]);
});

test('a bigger segment and heavier damage cost more', () => {
  const est = (make: string, model: string, damage: string) =>
    estimateVehicle(
      {
        role: 'A',
        vehicle: completeVehicle('A', {
          vehicle: { make, model },
          visibleDamage: damage,
        }) as VehicleSection,
        wilaya: '16',
        at: AT,
      },
      tables,
    ).amount;
  assert.ok(
    est('Volkswagen', 'Passat', 'portière avant droite arrachée') >
      est('Kia', 'Picanto', 'portière avant droite arrachée'),
  );
  assert.ok(
    est('Renault', 'Symbol', 'pare-chocs avant arraché') >
      est('Renault', 'Symbol', 'pare-chocs avant rayé'),
  );
});

test('unknown make, no plate, no damage: a wide range and a low confidence, no throw', () => {
  const known = estimateVehicle(
    { role: 'A', vehicle: completeVehicle('A') as VehicleSection, wilaya: '16', at: AT },
    tables,
  );
  const vague = estimateVehicle(
    {
      role: 'B',
      vehicle: { vehicle: { make: 'Lada', plate: 'AB-123-CD' }, visibleDamage: '' },
      wilaya: undefined,
      at: AT,
    },
    tables,
  );
  assert.ok(vague.amount > 0);
  assert.ok(vague.high / vague.low > (known.high / known.low) * 1.5, 'range not wider');
  assert.ok(vague.confidence < 0.3, `confidence ${vague.confidence}`);
  assert.is(vague.segmentKnown, false);
  assert.is(vague.vehicleAgeYears, null);
  assert.ok(vague.notes.length >= 3, vague.notes.join('; '));
});

test('whatever a phone wrote, the estimator answers', () => {
  const hostile = [
    {},
    { vehicle: null, visibleDamage: 42, impactPoint: 'front' },
    { vehicle: { make: 7, model: ['x'], plate: {} }, visibleDamage: { a: 1 } },
    { visibleDamage: 'x'.repeat(100_000) },
  ] as unknown as VehicleSection[];
  for (const vehicle of hostile) {
    const e = estimateVehicle({ role: 'A', vehicle, wilaya: undefined, at: AT }, tables);
    assert.ok(Number.isFinite(e.amount) && e.amount >= 0);
  }
});

test('a broken table fails at load, naming the file', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cost-tables-'));
  cpSync(new URL(DEFAULT_COST_TABLES_DIR), dir, { recursive: true });
  writeFileSync(path.join(dir, 'rates.json'), '{"source": "no version"}');
  assert.throws(
    () => loadCostTables(pathToFileURL(dir + '/')),
    (err: Error) => err instanceof CostTableError && /rates/.test(err.message),
  );
  const parts = JSON.parse(
    JSON.stringify(loadCostTables().parts).replace('"D":55000', '"D":"cheap"'),
  ) as unknown;
  writeFileSync(path.join(dir, 'rates.json'), JSON.stringify(loadCostTables().rates));
  writeFileSync(path.join(dir, 'parts.json'), JSON.stringify(parts));
  assert.throws(
    () => loadCostTables(pathToFileURL(dir + '/')),
    (err: Error) => err instanceof CostTableError && /parts.*segment D/.test(err.message),
  );
});

test.run();
