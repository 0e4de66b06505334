/**
 * The reference app's pure input rules: plates normalised and checked as typed (with the
 * domain's plate rule), the smallest text edit applied to a shared text (so two drivers typing
 * at once merge), the impact side of a tap, and join codes read from typed text or a QR code.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as Y from 'yjs';
import {
  checkPlateAsTyped,
  impactSide,
  joinCodeOf,
  normalisePlate,
  textEdit,
  toBase64,
  toHex,
} from '../web/src/input-rules.js';

test('typed Algerian plates are normalised to serial-CYY-WW', () => {
  assert.is(normalisePlate('12345 115 16', 'DZ'), '12345-115-16');
  assert.is(normalisePlate('12345.115/16', 'DZ'), '12345-115-16');
  assert.is(normalisePlate(' 12345--115-16a', 'DZ'), '12345-115-16');
  assert.is(normalisePlate('AB-123-CD', 'FR'), 'AB-123-CD');
});

test('a plate being typed is partial, a wrong one invalid, a complete one valid', () => {
  assert.equal(checkPlateAsTyped('', 'DZ'), { state: 'empty' });
  for (const partial of [
    '1',
    '12345',
    '12345-',
    '12345-1',
    '12345-115',
    '12345-115-',
    '12345-115-1',
  ]) {
    assert.is(checkPlateAsTyped(partial, 'DZ').state, 'partial', partial);
  }
  assert.is(checkPlateAsTyped('12345-015-16', 'DZ').state, 'invalid');
  assert.is(checkPlateAsTyped('12345-115-59', 'DZ').state, 'invalid');
  assert.is(checkPlateAsTyped('1234567-115-16', 'DZ').state, 'invalid');
  const valid = checkPlateAsTyped('12345-115-16', 'DZ');
  assert.is(valid.state, 'valid');
  assert.match((valid as { message: string }).message, /car, 2015, wilaya 16/);
  assert.is(checkPlateAsTyped('AB-123-CD', 'FR').state, 'valid');
  assert.is(checkPlateAsTyped('x'.repeat(21), 'FR').state, 'invalid');
});

test('textEdit turns one string into another with one delete and one insert', () => {
  const pairs: Array<[string, string]> = [
    ['', 'abc'],
    ['abc', ''],
    ['Benali', 'Ben Ali'],
    ['aaaa', 'aa'],
    ['rue Didouche', 'rue Didouche Mourad'],
    ['حداد', 'حدادي'],
    ['a😀b', 'a😁b'],
    ['😀', '😀😀'],
  ];
  for (const [before, after] of pairs) {
    const edit = textEdit(before, after)!;
    const result =
      before.slice(0, edit.index) + edit.insert + before.slice(edit.index + edit.remove);
    assert.is(result, after, `${before} -> ${after}`);
    // A surrogate pair is never cut in half.
    assert.not.match(edit.insert, /^[\uDC00-\uDFFF]|[\uD800-\uDBFF]$/);
  }
  assert.is(textEdit('same', 'same'), undefined);
});

test('two drivers typing into one Y.Text through textEdit both keep their characters', () => {
  const a = new Y.Doc();
  const b = new Y.Doc();
  a.getText('t').insert(0, 'rue Didouche');
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a));
  const type = (doc: Y.Doc, next: string) => {
    const text = doc.getText('t');
    const edit = textEdit(text.toString(), next)!;
    text.delete(edit.index, edit.remove);
    text.insert(edit.index, edit.insert);
  };
  type(a, 'rue Didouche Mourad');
  type(b, '12 rue Didouche');
  Y.applyUpdate(a, Y.encodeStateAsUpdate(b));
  Y.applyUpdate(b, Y.encodeStateAsUpdate(a));
  assert.is(a.getText('t').toString(), '12 rue Didouche Mourad');
  assert.is(b.getText('t').toString(), a.getText('t').toString());
});

test('the impact side is the nearest edge of the outline', () => {
  assert.is(impactSide(0.5, 0.02), 'front');
  assert.is(impactSide(0.5, 0.97), 'rear');
  assert.is(impactSide(0.05, 0.5), 'left');
  assert.is(impactSide(0.95, 0.4), 'right');
});

test('join codes come from typed digits or the QR payload, nothing else', () => {
  assert.is(joinCodeOf('123456'), '123456');
  assert.is(joinCodeOf(' 123 456 '), '123456');
  assert.is(joinCodeOf('constat://join?code=654321'), '654321');
  for (const bad of [
    '12345',
    '1234567',
    'constat://join?code=12345',
    'https://x/join?code=123456',
    '',
  ]) {
    assert.is(joinCodeOf(bad), undefined, bad);
  }
});

test('base64 and hex match Node', () => {
  const bytes = new Uint8Array([0, 1, 127, 128, 255, 16]);
  assert.is(toBase64(bytes), Buffer.from(bytes).toString('base64'));
  assert.is(toHex(bytes), Buffer.from(bytes).toString('hex'));
});

test.run();
