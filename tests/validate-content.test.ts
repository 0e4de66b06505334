import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { COMPANY_UIDS } from '../integrations/companies.js';
import type { JsonObject } from '../constat/canonical-json.js';
import type { ConstatContent } from '../constat/constat-doc.js';
import { FORM_VERSIONS, getFormVersion, DEFAULT_FORM_VERSION } from '../constat/form-versions.js';
import { checkForeignPlate, parseDzPlate } from '../constat/plates.js';
import {
  validateContent,
  type FieldError,
  type ValidateOptions,
} from '../constat/validate-content.js';
import { completeAccident, completeContent, completeVehicle } from './fixtures/constat.js';

const NOW = new Date('2025-03-20T10:00:00Z');
const OPTS: ValidateOptions = { formVersion: 'dz', knownInsurers: COMPANY_UIDS, now: NOW };

function content(parts: Partial<ConstatContent> = {}): ConstatContent {
  return { ...completeContent(), ...parts };
}

function codes(errors: FieldError[]): string[] {
  return errors.map((e) => `${e.path}:${e.code}`);
}

/** Asserts the errors are exactly `expected` (path:code), in any order. */
function expectErrors(c: ConstatContent, expected: string[], opts: Partial<ValidateOptions> = {}) {
  const errors = validateContent(c, { ...OPTS, ...opts });
  assert.equal(codes(errors).sort(), [...expected].sort(), JSON.stringify(errors, null, 2));
  for (const e of errors) assert.ok(e.message.length > 0);
}

const accident = (overrides: JsonObject) => content({ accident: completeAccident(overrides) });
const vehicleA = (overrides: JsonObject) => content({ vehicleA: completeVehicle('A', overrides) });
/** Replaces vehicle A's ticked boxes (a deep merge would add to the fixture's box 1). */
const boxes = (ticks: JsonObject, circumstanceCount = Object.keys(ticks).length) =>
  content({ vehicleA: { ...completeVehicle('A'), circumstances: ticks, circumstanceCount } });

// ---------------------------------------------------------------------------------------------
// form versions and insurers

test('form versions as data', () => {
  assert.is(DEFAULT_FORM_VERSION, 'dz');
  assert.equal(
    FORM_VERSIONS.map((v) => [v.id, v.circumstances.length]),
    [
      ['dz', 23],
      ['eu', 17],
    ],
  );
  assert.is(getFormVersion('dz')?.circumstances[22]?.labels.fr, 'Ouvrait une portière');
  assert.is(getFormVersion('eu')?.circumstances[13]?.labels.en, 'reversing');
  assert.ok(getFormVersion('eu')?.circumstances.every((c) => c.labels.en));
  assert.is(getFormVersion('fr'), undefined);
});

test('company uids', () => {
  assert.is(COMPANY_UIDS.size, 13);
  for (const uid of ['saa', 'trust', '2a', 'axa-dz']) assert.ok(COMPANY_UIDS.has(uid), uid);
});

// ---------------------------------------------------------------------------------------------
// complete content

test('a complete constat has no errors', () => {
  expectErrors(content(), []);
});

test('an empty constat reports every required field', () => {
  const empty: ConstatContent = { accident: {}, vehicleA: {}, vehicleB: {}, sketch: {} };
  const perVehicle = [
    'policyholder.lastName',
    'policyholder.firstName',
    'vehicle.make',
    'vehicle.plate',
    'insurer.company',
    'insurer.policyNumber',
    'driver.lastName',
    'driver.firstName',
    'driver.licenceNumber',
    'circumstanceCount',
  ];
  expectErrors(empty, [
    'accident.date:required',
    'accident.time:required',
    'accident.place.wilaya:required',
    'accident.place.address:required',
    'accident.injuries:required',
    ...perVehicle.map((f) => `vehicleA.${f}:required`),
    ...perVehicle.map((f) => `vehicleB.${f}:required`),
  ]);
});

test('unknown form version', () => {
  expectErrors(content(), ['meta.formVersion:unknown_value'], { formVersion: 'fr-1990' });
});

// ---------------------------------------------------------------------------------------------
// accident

test('accident date', () => {
  expectErrors(accident({ date: null }), ['accident.date:required']);
  expectErrors(accident({ date: '14/03/2025' }), ['accident.date:invalid_format']);
  expectErrors(accident({ date: '2025-02-30' }), ['accident.date:invalid_format']);
  expectErrors(accident({ date: 20250314 }), ['accident.date:invalid_format']);
  expectErrors(accident({ date: '2025-03-21' }), ['accident.date:out_of_range']);
  expectErrors(accident({ date: '2025-03-20' }), []);
});

test('accident date is judged in the local time zone', () => {
  // 23:30 UTC on the 20th is already the 21st in Algiers (UTC+1).
  const lateEvening = new Date('2025-03-20T23:30:00Z');
  expectErrors(accident({ date: '2025-03-21' }), [], { now: lateEvening });
  expectErrors(accident({ date: '2025-03-21' }), ['accident.date:out_of_range'], {
    now: lateEvening,
    timeZone: 'UTC',
  });
});

test('accident time', () => {
  expectErrors(accident({ time: null }), ['accident.time:required']);
  expectErrors(accident({ time: '24:00' }), ['accident.time:invalid_format']);
  expectErrors(accident({ time: '7:45' }), ['accident.time:invalid_format']);
  expectErrors(accident({ time: '07:45' }), []);
});

test('place: country, wilaya, address or commune', () => {
  expectErrors(accident({ place: { country: 'dz' } }), ['accident.place.country:invalid_format']);
  expectErrors(accident({ place: { wilaya: null } }), ['accident.place.wilaya:required']);
  expectErrors(accident({ place: { wilaya: '00' } }), ['accident.place.wilaya:out_of_range']);
  expectErrors(accident({ place: { wilaya: '59' } }), ['accident.place.wilaya:out_of_range']);
  expectErrors(accident({ place: { wilaya: '59' } }), [], { maxWilaya: 69 });
  expectErrors(accident({ place: { wilaya: '9' } }), ['accident.place.wilaya:invalid_format']);
  expectErrors(accident({ place: { country: null, wilaya: null } }), [
    'accident.place.wilaya:required',
  ]);
  // Abroad there is no wilaya.
  expectErrors(accident({ place: { country: 'TN', wilaya: null } }), []);
  expectErrors(accident({ place: { address: null } }), []);
  expectErrors(accident({ place: { address: '  ', commune: null } }), [
    'accident.place.address:required',
  ]);
});

test('place: gps', () => {
  expectErrors(accident({ place: { gps: null } }), []);
  expectErrors(accident({ place: { gps: { lat: 95, lon: 3 } } }), [
    'accident.place.gps.lat:out_of_range',
  ]);
  expectErrors(accident({ place: { gps: { lat: 36.7, lon: '3' } } }), [
    'accident.place.gps.lon:invalid_format',
  ]);
  expectErrors(accident({ place: { gps: 'here' } }), ['accident.place.gps:invalid_format']);
});

test('injuries and damage flags', () => {
  expectErrors(accident({ injuries: null }), ['accident.injuries:required']);
  expectErrors(accident({ injuries: 'no' }), ['accident.injuries:invalid_format']);
  expectErrors(accident({ injuries: true }), []);
  expectErrors(accident({ objectDamage: 1 }), ['accident.objectDamage:invalid_format']);
});

test('witnesses', () => {
  const w = (name: string) => ({ name, phone: '0550000000' });
  expectErrors(accident({ witnesses: [] }), []);
  expectErrors(accident({ witnesses: [w('a'), w('b'), w('c'), w('d')] }), []);
  expectErrors(accident({ witnesses: [w('a'), w('b'), w('c'), w('d'), w('e')] }), [
    'accident.witnesses:out_of_range',
  ]);
  expectErrors(accident({ witnesses: [w('a'), { phone: '0550000000' }] }), [
    'accident.witnesses.1.name:required',
  ]);
  expectErrors(accident({ witnesses: ['Karim'] }), ['accident.witnesses.0:invalid_format']);
  expectErrors(accident({ witnesses: 'Karim' }), ['accident.witnesses:invalid_format']);
});

// ---------------------------------------------------------------------------------------------
// vehicles

test('policyholder', () => {
  expectErrors(vehicleA({ policyholder: { lastName: null } }), [
    'vehicleA.policyholder.lastName:required',
  ]);
  expectErrors(vehicleA({ policyholder: { firstName: '' } }), [
    'vehicleA.policyholder.firstName:required',
  ]);
  expectErrors(vehicleA({ policyholder: { firstName: 7 } }), [
    'vehicleA.policyholder.firstName:invalid_format',
  ]);
  expectErrors(vehicleA({ policyholder: { email: 'samir' } }), [
    'vehicleA.policyholder.email:invalid_format',
  ]);
  expectErrors(vehicleA({ policyholder: 'Haddad' }), [
    'vehicleA.policyholder.lastName:required',
    'vehicleA.policyholder.firstName:required',
  ]);
});

test('vehicle make', () => {
  expectErrors(vehicleA({ vehicle: { make: null } }), ['vehicleA.vehicle.make:required']);
});

test('vehicle plate: Algerian format and wilaya range', () => {
  const plate = (p: string | null, extra: JsonObject = {}) =>
    vehicleA({ vehicle: { plate: p, ...extra } });
  expectErrors(plate('12345-115-16'), []);
  expectErrors(plate('1-100-01'), []);
  expectErrors(plate('123456-958-58'), []);
  expectErrors(plate(null), ['vehicleA.vehicle.plate:required']);
  expectErrors(plate('12345-115-00'), ['vehicleA.vehicle.plate:out_of_range']);
  expectErrors(plate('12345-115-59'), ['vehicleA.vehicle.plate:out_of_range']);
  expectErrors(plate('12345-115-59'), [], { maxWilaya: 69 });
  for (const bad of [
    '1234567-115-16',
    '12345-015-16',
    '12345-11-16',
    '12345 115 16',
    'AB-123-16',
    '12345-115-6',
  ]) {
    expectErrors(plate(bad), ['vehicleA.vehicle.plate:invalid_format']);
  }
  // No plate country means Algerian.
  expectErrors(plate('AB 123 CD', { plateCountry: null }), [
    'vehicleA.vehicle.plate:invalid_format',
  ]);
  expectErrors(plate('12345-115-16', { plateCountry: 'Algeria' }), [
    'vehicleA.vehicle.plateCountry:invalid_format',
  ]);
});

test('vehicle plate: foreign plates are free text', () => {
  const plate = (p: string) => vehicleA({ vehicle: { plate: p, plateCountry: 'FR' } });
  expectErrors(plate('AB-123-CD'), []);
  expectErrors(plate('W 1234 TUN'), []);
  expectErrors(plate('   '), ['vehicleA.vehicle.plate:required']);
  expectErrors(plate('X'.repeat(21)), ['vehicleA.vehicle.plate:invalid_format']);
});

test('insurer', () => {
  expectErrors(vehicleA({ insurer: { company: null } }), ['vehicleA.insurer.company:required']);
  expectErrors(vehicleA({ insurer: { company: 'allianz-fr' } }), [
    'vehicleA.insurer.company:unknown_value',
  ]);
  expectErrors(content(), ['vehicleB.insurer.company:unknown_value'], {
    knownInsurers: new Set(['saa']),
  });
  expectErrors(vehicleA({ insurer: { policyNumber: null } }), [
    'vehicleA.insurer.policyNumber:required',
  ]);
  expectErrors(vehicleA({ insurer: { validFrom: '2025-13-01' } }), [
    'vehicleA.insurer.validFrom:invalid_format',
  ]);
  expectErrors(vehicleA({ insurer: { validFrom: '2026-01-01' } }), [
    'vehicleA.insurer.validTo:out_of_range',
  ]);
  expectErrors(vehicleA({ insurer: { validFrom: '2025-12-31' } }), []);
  expectErrors(vehicleA({ insurer: { validFrom: null, validTo: null } }), []);
  expectErrors(vehicleA({ insurer: { coversOwnDamage: 'oui' } }), [
    'vehicleA.insurer.coversOwnDamage:invalid_format',
  ]);
});

test('driver', () => {
  expectErrors(vehicleA({ driver: { lastName: null } }), ['vehicleA.driver.lastName:required']);
  expectErrors(vehicleA({ driver: { firstName: null } }), ['vehicleA.driver.firstName:required']);
  expectErrors(vehicleA({ driver: { licenceNumber: null } }), [
    'vehicleA.driver.licenceNumber:required',
  ]);
  expectErrors(vehicleA({ driver: { birthDate: '02/06/1985' } }), [
    'vehicleA.driver.birthDate:invalid_format',
  ]);
  expectErrors(vehicleA({ driver: null }), [
    'vehicleA.driver.lastName:required',
    'vehicleA.driver.firstName:required',
    'vehicleA.driver.licenceNumber:required',
  ]);
});

test('impact point', () => {
  expectErrors(vehicleA({ impactPoint: null }), []);
  expectErrors(vehicleA({ impactPoint: { x: 1.2 } }), ['vehicleA.impactPoint.x:out_of_range']);
  expectErrors(vehicleA({ impactPoint: { y: null } }), ['vehicleA.impactPoint.y:required']);
});

test('circumstances and their declared count', () => {
  expectErrors(vehicleA({ circumstanceCount: null }), ['vehicleA.circumstanceCount:required']);
  expectErrors(vehicleA({ circumstanceCount: 1.5 }), ['vehicleA.circumstanceCount:invalid_format']);
  expectErrors(vehicleA({ circumstanceCount: 2 }), ['vehicleA.circumstanceCount:count_mismatch']);
  expectErrors(boxes({ '14': true }, 2), ['vehicleA.circumstanceCount:count_mismatch']);
  expectErrors(boxes({ '1': true, '14': true, '16': true }), []);
  expectErrors(vehicleA({ circumstances: null, circumstanceCount: 0 }), []);
  expectErrors(boxes({ '1': true, '24': true }), ['vehicleA.circumstances.24:unknown_value']);
  expectErrors(boxes({ '1': true, '2': false }, 1), ['vehicleA.circumstances.2:invalid_format']);
  expectErrors(boxes({ '1': true, '2': false }, 2), [
    'vehicleA.circumstances.2:invalid_format',
    'vehicleA.circumstanceCount:count_mismatch',
  ]);
  expectErrors(vehicleA({ circumstances: [1] }), ['vehicleA.circumstances:invalid_format']);
});

test('circumstance boxes depend on the form version', () => {
  const box23 = boxes({ '23': true });
  expectErrors(box23, [], { formVersion: 'dz' });
  expectErrors(box23, ['vehicleA.circumstances.23:unknown_value'], { formVersion: 'eu' });
  expectErrors(boxes({ '17': true }), [], { formVersion: 'eu' });
  expectErrors(boxes({ '0': true }), ['vehicleA.circumstances.0:unknown_value']);
  expectErrors(boxes({ '01': true }), ['vehicleA.circumstances.01:unknown_value']);
});

test('both vehicles are checked with the same rules', () => {
  const c = content({ vehicleB: completeVehicle('B', { vehicle: { plate: '1-100-00' } }) });
  expectErrors(c, ['vehicleB.vehicle.plate:out_of_range']);
});

// ---------------------------------------------------------------------------------------------
// plates on their own

test('parseDzPlate', () => {
  assert.equal(parseDzPlate('12345-115-16', { now: NOW }), {
    ok: true,
    serial: '12345',
    category: 1,
    categoryLabel: 'car',
    year: 2015,
    wilaya: '16',
  });
  const old = parseDzPlate('77-998-31', { now: NOW });
  assert.ok(old.ok && old.year === 1998 && old.categoryLabel === 'motorcycle');
  const r = parseDzPlate('12345-115-69', { maxWilaya: 69 });
  assert.ok(r.ok && r.wilaya === '69');
  const out = parseDzPlate('12345-115-59');
  assert.ok(!out.ok && out.code === 'out_of_range' && out.reason.includes('59'));
  assert.ok(checkForeignPlate('B-1234-XY').ok);
});

test.run();
