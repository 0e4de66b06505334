import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canonicalJson, CanonicalJsonError } from '../constat/canonical-json.js';
import { SORTING_EXAMPLE } from './fixtures/rfc8785.js';

test('RFC 8785 section 3.2.2 example', () => {
  const input = JSON.parse(
    '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],' +
      ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",' +
      ' "literals": [null, true, false]}',
  ) as unknown;
  assert.is(
    canonicalJson(input),
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
      '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
  );
});

test('keys are sorted by UTF-16 code units (RFC 8785 section 3.2.3)', () => {
  assert.is(canonicalJson(SORTING_EXAMPLE.input), SORTING_EXAMPLE.canonical);
});

test('UTF-16 order puts a surrogate pair before U+E000..U+FFFF, unlike code point order', () => {
  // U+1F600 is 0xD83D 0xDE00 in UTF-16, so it sorts before U+FB33 although its code point is larger.
  assert.is(canonicalJson({ '\ufb33': 1, '😀': 2 }), '{"\ud83d\ude00":2,"\ufb33":1}');
});

test('nested objects and arrays, no whitespace', () => {
  assert.is(canonicalJson({ b: [1, { d: 1, c: 2 }], a: {} }), '{"a":{},"b":[1,{"c":2,"d":1}]}');
  assert.is(canonicalJson([]), '[]');
});

test('numbers follow ECMAScript Number.prototype.toString', () => {
  const cases: [number, string][] = [
    [0, '0'],
    [-0, '0'],
    [1, '1'],
    [-1.5, '-1.5'],
    [1e21, '1e+21'],
    [1e20, '100000000000000000000'],
    [0.000001, '0.000001'],
    [0.0000001, '1e-7'],
    [9007199254740992, '9007199254740992'],
    [Number.MAX_VALUE, '1.7976931348623157e+308'],
    [Number.MIN_VALUE, '5e-324'],
    [333333333.33333329, '333333333.3333333'],
  ];
  for (const [value, expected] of cases) assert.is(canonicalJson(value), expected, String(value));
});

test('string escaping', () => {
  assert.is(canonicalJson('a"b\\c'), '"a\\"b\\\\c"');
  assert.is(canonicalJson('\b\f\n\r\t'), '"\\b\\f\\n\\r\\t"');
  assert.is(canonicalJson('\u0000\u001f'), '"\\u0000\\u001f"');
  assert.is(canonicalJson('/ é € 😀 \u007f'), '"/ é € 😀 \u007f"');
});

test('literals', () => {
  assert.is(canonicalJson(null), 'null');
  assert.is(canonicalJson(true), 'true');
  assert.is(canonicalJson(false), 'false');
});

test('rejects non-finite numbers', () => {
  assert.throws(() => canonicalJson(NaN), /NaN is not a JSON number at \$/);
  assert.throws(() => canonicalJson({ a: [Infinity] }), /Infinity .* at \$\.a\[0\]/);
  assert.throws(
    () => canonicalJson(-Infinity),
    (e: unknown) => e instanceof CanonicalJsonError && e.path === '$',
  );
});

test('rejects undefined and other non-JSON values', () => {
  assert.throws(() => canonicalJson(undefined), /undefined is not a JSON value/);
  assert.throws(() => canonicalJson({ a: undefined }), /at \$\.a/);
  assert.throws(() => canonicalJson([1, undefined]), /at \$\[1\]/);
  assert.throws(() => canonicalJson(() => 1), /function/);
  assert.throws(() => canonicalJson(10n), /bigint/);
  assert.throws(() => canonicalJson(new Date(0)), /Date is not a plain JSON object/);
  assert.throws(() => canonicalJson(new Uint8Array(2)), /Uint8Array/);
  assert.throws(() => canonicalJson([1, , 3]), /hole/);
});

test('rejects cycles but accepts shared references', () => {
  const shared = { x: 1 };
  assert.is(canonicalJson({ a: shared, b: shared }), '{"a":{"x":1},"b":{"x":1}}');
  const cyclic: Record<string, unknown> = {};
  cyclic['self'] = cyclic;
  assert.throws(() => canonicalJson(cyclic), /cycle at \$\.self/);
});

test('objects without a prototype are plain objects', () => {
  const o = Object.create(null) as Record<string, number>;
  o['b'] = 1;
  o['a'] = 2;
  assert.is(canonicalJson(o), '{"a":2,"b":1}');
});

test('a value nested 100,000 levels deep is written without exhausting the stack', () => {
  let deep: unknown = 'leaf';
  for (let i = 0; i < 100_000; i++) deep = i % 2 ? [deep] : { k: deep };
  const text = canonicalJson(deep);
  assert.is(text.length, 50_000 * '{"k":['.length + 50_000 * ']}'.length + '"leaf"'.length);
  assert.equal(JSON.parse(canonicalJson({ b: [1, { d: 2, c: 3 }], a: null })), {
    a: null,
    b: [1, { c: 3, d: 2 }],
  });
});

test.run();
