import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as Y from 'yjs';
import { ConstatError } from '../constat/errors.js';
import { recordOwners } from '../constat/client-owners.js';
import {
  CONTENT_ROOTS,
  materialise,
  readMeta,
  readSignatures,
  ROOTS,
  writeMeta,
  writeSignature,
} from '../constat/constat-doc.js';
import { typeText, writeSection } from '../client/writer.js';
import { contentHash, hashContent, signingMessage } from '../constat/content-hash.js';
import {
  completeAccident,
  completeContent,
  completeSketch,
  completeVehicle,
} from './fixtures/constat.js';

function filledDoc(options: { plainStrings?: boolean } = {}): Y.Doc {
  const doc = new Y.Doc();
  const content = completeContent();
  for (const root of CONTENT_ROOTS) writeSection(doc, root, content[root], 'test', options);
  return doc;
}

test('roots and content roots', () => {
  assert.equal([...ROOTS], ['meta', 'accident', 'vehicleA', 'vehicleB', 'sketch', 'signatures']);
  assert.equal([...CONTENT_ROOTS], ['accident', 'vehicleA', 'vehicleB', 'sketch']);
});

test('an empty document materialises to empty sections', () => {
  assert.equal(materialise(new Y.Doc()), { accident: {}, vehicleA: {}, vehicleB: {}, sketch: {} });
});

test('writeSection then materialise gives the same JSON back', () => {
  assert.equal(materialise(filledDoc()), completeContent());
});

test('writeSection stores nested groups, text, sets, plain objects and arrays as Yjs types', () => {
  const doc = filledDoc();
  const vehicle = doc.getMap('vehicleA');
  assert.instance(vehicle.get('policyholder'), Y.Map);
  assert.instance((vehicle.get('policyholder') as Y.Map<unknown>).get('lastName'), Y.Text);
  assert.instance(vehicle.get('remarks'), Y.Text);
  assert.type((vehicle.get('vehicle') as Y.Map<unknown>).get('plate'), 'string');
  const boxes = vehicle.get('circumstances') as Y.Map<unknown>;
  assert.instance(boxes, Y.Map);
  assert.is(boxes.get('1'), true);
  assert.not.instance(vehicle.get('impactPoint'), Y.AbstractType);
  const accident = doc.getMap('accident');
  const place = accident.get('place') as Y.Map<unknown>;
  assert.not.instance(place.get('gps'), Y.AbstractType);
  const witnesses = accident.get('witnesses') as Y.Array<Y.Map<unknown>>;
  assert.instance(witnesses, Y.Array);
  assert.instance(witnesses.get(0).get('name'), Y.Text);
  const elements = doc.getMap('sketch').get('elements') as Y.Map<Y.Map<unknown>>;
  assert.instance(elements.get('road1')?.get('points'), Y.Array);
});

test('Y.Text and plain strings give the same JSON and the same hash', () => {
  const withText = filledDoc();
  const withStrings = filledDoc({ plainStrings: true });
  assert.type(
    (withStrings.getMap('vehicleA').get('policyholder') as Y.Map<unknown>).get('lastName'),
    'string',
  );
  assert.equal(materialise(withText), materialise(withStrings));
  assert.is(contentHash(withText), contentHash(withStrings));
});

test('circumstances given as an array of ids become a set of ticks', () => {
  const doc = new Y.Doc();
  writeSection(doc, 'vehicleA', { circumstances: [1, 14], circumstanceCount: 2 });
  assert.equal(materialise(doc).vehicleA, {
    circumstances: { '1': true, '14': true },
    circumstanceCount: 2,
  });
  writeSection(doc, 'vehicleA', { circumstances: [14, 16] });
  assert.equal(materialise(doc).vehicleA['circumstances'], { '14': true, '16': true });
});

test('concurrent ticks of the same box converge on one tick', () => {
  const a = new Y.Doc();
  const b = new Y.Doc();
  writeSection(a, 'vehicleA', { circumstances: [3] });
  writeSection(b, 'vehicleA', { circumstances: [3] });
  Y.applyUpdate(a, Y.encodeStateAsUpdate(b));
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a));
  assert.equal(materialise(a).vehicleA, { circumstances: { '3': true } });
  assert.is(contentHash(a), contentHash(b));
});

test('writeSection merges: unmentioned fields stay, null deletes, same value writes nothing', () => {
  const doc = new Y.Doc();
  writeSection(doc, 'vehicleB', completeVehicle('B'));
  writeSection(doc, 'vehicleB', { vehicle: { model: 'i10' }, remarks: null });
  const vehicleB = materialise(doc).vehicleB;
  assert.equal(vehicleB['vehicle'], {
    make: 'Hyundai',
    model: 'i10',
    plate: '987-114-31',
    plateCountry: 'DZ',
  });
  assert.not.ok('remarks' in vehicleB);

  let updates = 0;
  doc.on('update', () => updates++);
  writeSection(doc, 'vehicleB', completeVehicle('B', { remarks: null, vehicle: { model: 'i10' } }));
  writeSection(doc, 'accident', {});
  assert.is(updates, 0);
});

test('rewriting a text field edits the Y.Text in place and keeps concurrent typing', () => {
  const a = new Y.Doc();
  writeSection(a, 'accident', { place: { address: 'rue Didouche Mourad' } });
  const b = new Y.Doc();
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a));
  const before = (a.getMap('accident').get('place') as Y.Map<unknown>).get('address');
  writeSection(a, 'accident', { place: { address: '12 rue Didouche Mourad' } });
  assert.is((a.getMap('accident').get('place') as Y.Map<unknown>).get('address'), before);
  typeText(b, 'accident', ['place', 'address'], ', Alger');
  Y.applyUpdate(a, Y.encodeStateAsUpdate(b));
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a));
  const address = (materialise(a).accident['place'] as Record<string, unknown>)['address'];
  assert.is(address, '12 rue Didouche Mourad, Alger');
  assert.is(contentHash(a), contentHash(b));
});

test('content hash does not depend on insertion order', () => {
  const forward = filledDoc();
  const backward = new Y.Doc();
  const content = completeContent();
  for (const root of [...CONTENT_ROOTS].reverse()) {
    const section = content[root];
    const reversed = Object.fromEntries(Object.entries(section).reverse());
    writeSection(backward, root, reversed);
  }
  assert.is(contentHash(forward), contentHash(backward));
  assert.match(contentHash(forward), /^[0-9a-f]{64}$/);
});

test('content hash changes when content changes, and not for meta or signatures', () => {
  const doc = filledDoc();
  const original = contentHash(doc);
  writeMeta(
    doc,
    { formVersion: 'dz', sessionId: 's1', createdAt: '2025-03-14T16:50:00.000Z' },
    'server',
  );
  writeSignature(
    doc,
    'A',
    {
      hash: original,
      signature: 'sig',
      deviceId: 'd1',
      userId: 'u1',
      signedAt: '2025-03-14T17:00:00.000Z',
    },
    'server',
  );
  assert.is(contentHash(doc), original);
  writeSection(doc, 'vehicleA', { visibleDamage: 'Pare-chocs avant enfoncé, phare droit cassé' });
  assert.is.not(contentHash(doc), original);
  writeSection(doc, 'vehicleA', { visibleDamage: 'Pare-chocs avant enfoncé' });
  assert.is(contentHash(doc), original);
});

test('hashContent equals contentHash of the materialised document', () => {
  assert.is(hashContent(completeContent()), contentHash(filledDoc()));
  // SHA-256 of the UTF-8 bytes of the canonical JSON {}.
  assert.is(hashContent({}), '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
});

test('two documents synced with Y.applyUpdate give identical hashes', () => {
  const a = new Y.Doc();
  const b = new Y.Doc();
  writeSection(a, 'accident', completeAccident());
  writeSection(a, 'vehicleA', completeVehicle('A'));
  writeSection(b, 'vehicleB', completeVehicle('B'));
  writeSection(b, 'sketch', completeSketch());
  assert.is.not(contentHash(a), contentHash(b));
  Y.applyUpdate(a, Y.encodeStateAsUpdate(b));
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a));
  assert.equal(materialise(a), completeContent());
  assert.is(contentHash(a), contentHash(b));
});

test('typeText types one character per transaction and creates the path', () => {
  const doc = new Y.Doc();
  let transactions = 0;
  doc.on('afterTransaction', () => transactions++);
  typeText(doc, 'vehicleA', ['driver', 'lastName'], 'Aït 😀', 'phone-a');
  assert.is(transactions, 1 + 5);
  const driver = doc.getMap('vehicleA').get('driver') as Y.Map<unknown>;
  assert.instance(driver.get('lastName'), Y.Text);
  assert.equal(materialise(doc).vehicleA, { driver: { lastName: 'Aït 😀' } });
});

test('typeText appends to an existing plain string by turning it into a Y.Text', () => {
  const doc = new Y.Doc();
  writeSection(doc, 'vehicleA', { remarks: 'Feu' }, undefined, { plainStrings: true });
  typeText(doc, 'vehicleA', ['remarks'], ' rouge');
  assert.instance(doc.getMap('vehicleA').get('remarks'), Y.Text);
  assert.is(materialise(doc).vehicleA['remarks'], 'Feu rouge');
});

test('typeText passes the origin to every transaction', () => {
  const doc = new Y.Doc();
  const origins = new Set<unknown>();
  doc.on('afterTransaction', (tr: Y.Transaction) => origins.add(tr.origin));
  typeText(doc, 'accident', ['place', 'commune'], '');
  typeText(doc, 'sketch', ['elements', 'n1', 'text'], 'ab', 'phone-b');
  assert.equal([...origins], [null, 'phone-b']);
});

test('materialise drops undefined and non-JSON values and nulls non-finite numbers', () => {
  const doc = new Y.Doc();
  const accident = doc.getMap<unknown>('accident');
  accident.set('date', undefined);
  accident.set('blob', new Uint8Array([1, 2]));
  accident.set('nan', NaN);
  accident.set('plain', { a: undefined, b: [1, undefined] });
  assert.equal(materialise(doc).accident, { nan: null, plain: { b: [1, null] } });
});

test('readMeta, writeMeta and client owners', () => {
  const doc = new Y.Doc();
  assert.equal(readMeta(doc), { clients: {} });
  const origins: unknown[] = [];
  doc.on('afterTransaction', (tr: Y.Transaction) => origins.push(tr.origin));
  writeMeta(
    doc,
    { formVersion: 'eu', sessionId: 's42', createdAt: '2025-03-14T16:50:00.000Z' },
    'server',
  );
  recordOwners(doc, [1234], 'A', 'server');
  recordOwners(doc, [5678], 'B', 'server');
  assert.equal(readMeta(doc), {
    formVersion: 'eu',
    sessionId: 's42',
    createdAt: '2025-03-14T16:50:00.000Z',
    clients: { '1234': 'A', '5678': 'B', [String(doc.clientID)]: 'server' },
  });
  assert.equal(origins, ['server', 'server', 'server']);
});

test('readSignatures returns well-formed entries only', () => {
  const doc = new Y.Doc();
  const record = {
    hash: 'ab'.repeat(32),
    signature: 'c2ln',
    deviceId: 'd1',
    userId: 'u1',
    signedAt: '2025-03-14T17:00:00.000Z',
  };
  writeSignature(doc, 'B', record, 'server');
  doc.getMap('signatures').set('A', { hash: 'x' });
  assert.equal(readSignatures(doc), { B: record });
});

test('signingMessage', () => {
  assert.is(signingMessage('s1', 'A', 'ff00'), 'constat-sign:v1:s1:A:ff00');
});

test('materialise: a document nested past the limit answers with a clear error, not a stack overflow', () => {
  // Built directly, as a document stored before the update gate capped nesting could be.
  const doc = new Y.Doc();
  let map = doc.getMap<unknown>('accident');
  doc.transact(() => {
    for (let i = 0; i < 20_000; i++) {
      const inner = new Y.Map<unknown>();
      map.set('k', inner);
      map = inner;
    }
  });
  assert.throws(
    () => materialise(doc),
    (err: unknown) =>
      err instanceof ConstatError && err.code === 'TOO_LARGE' && /32 levels/.test(err.message),
  );
  // 32 levels of maps are content like any other.
  const ok = new Y.Doc();
  let m = ok.getMap<unknown>('sketch');
  for (let i = 0; i < 32; i++) {
    const inner = new Y.Map<unknown>();
    m.set('k', inner);
    m = inner;
  }
  m.set('leaf', 1);
  assert.ok(JSON.stringify(materialise(ok).sketch).includes('"leaf":1'));
});

test.run();
