/**
 * The tests' own RFC 8785 (JCS) canonicalisation and SHA-256, written from the RFC and
 * independent of sync/: what an insurer would write to check a constat's hash.
 */
import { createHash } from 'node:crypto';

const ESCAPES: Record<number, string> = { 8: '\\b', 9: '\\t', 10: '\\n', 12: '\\f', 13: '\\r' };

function jcsString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c < 0x20) out += ESCAPES[c] ?? `\\u${c.toString(16).padStart(4, '0')}`;
    else out += s[i];
  }
  return `${out}"`;
}

/** Property order of RFC 8785 §3.2.3: by UTF-16 code units, as unsigned integers. */
function byCodeUnits(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a.charCodeAt(i) - b.charCodeAt(i);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function jcs(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      // RFC 8785 §3.2.2.3: the ECMAScript Number-to-String algorithm (String(-0) is "0").
      if (!Number.isFinite(value)) throw new Error(`not a JSON number: ${value}`);
      return String(value);
    case 'string':
      return jcsString(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map(jcs).join(',')}]`;
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record)
        .filter((k) => record[k] !== undefined)
        .sort(byCodeUnits);
      return `{${keys.map((k) => `${jcsString(k)}:${jcs(record[k])}`).join(',')}}`;
    }
    default:
      throw new Error(`not JSON: ${typeof value}`);
  }
}

export const sha256hex = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
