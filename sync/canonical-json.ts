/**
 * RFC 8785 JSON Canonicalization Scheme (JCS).
 *
 * Both phones and the server hash the same content and must get the same bytes, so the JSON
 * text has to be canonical. It is written here rather than taken from npm because the packages
 * that implement it either require Node 22 or are unmaintained, and the algorithm is short:
 * - object keys sorted by their UTF-16 code units (what the default Array#sort compares);
 * - numbers serialised as ECMAScript Number.prototype.toString, which JSON.stringify already
 *   does (1e21 -> "1e+21", 0.000001 -> "0.000001", -0 -> "0");
 * - strings escaped as JSON.stringify escapes them (lowercase \u00xx for control characters,
 *   everything else literal);
 * - no whitespace.
 * Anything that is not JSON (undefined, NaN, Infinity, functions, bigint, class instances, holes
 * in arrays, cycles) is rejected instead of being silently dropped or turned into null the way
 * JSON.stringify would: a signature must cover exactly the data it claims to cover.
 */

export type JsonPrimitive = string | number | boolean | null;
export type JsonValue = JsonPrimitive | JsonValue[] | JsonObject;
export type JsonObject = { [key: string]: JsonValue };

export class CanonicalJsonError extends Error {
  constructor(
    message: string,
    /** Where the offending value sits, as `$.a.b[0]`. */
    readonly path: string,
  ) {
    super(`canonicalJson: ${message} at ${path}`);
    this.name = 'CanonicalJsonError';
  }
}

export function canonicalJson(value: unknown): string {
  return serialise(value, '$', new Set());
}

function serialise(value: unknown, path: string, open: Set<object>): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) {
        throw new CanonicalJsonError(`${String(value)} is not a JSON number`, path);
      }
      return JSON.stringify(value);
    case 'object':
      return serialiseContainer(value, path, open);
    default:
      throw new CanonicalJsonError(`${typeof value} is not a JSON value`, path);
  }
}

function serialiseContainer(value: object, path: string, open: Set<object>): string {
  if (open.has(value)) throw new CanonicalJsonError('cycle', path);
  open.add(value);
  try {
    if (Array.isArray(value)) {
      const parts: string[] = [];
      for (let i = 0; i < value.length; i++) {
        const itemPath = `${path}[${i}]`;
        if (!(i in value)) throw new CanonicalJsonError('hole in array', itemPath);
        parts.push(serialise(value[i], itemPath, open));
      }
      return `[${parts.join(',')}]`;
    }
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      const name = value.constructor?.name ?? 'object';
      throw new CanonicalJsonError(`${name} is not a plain JSON object`, path);
    }
    const record = value as Record<string, unknown>;
    // Default sort compares UTF-16 code units, which is exactly the order RFC 8785 asks for.
    const keys = Object.keys(record).sort();
    const parts = keys.map(
      (k) => `${JSON.stringify(k)}:${serialise(record[k], `${path}.${k}`, open)}`,
    );
    return `{${parts.join(',')}}`;
  } finally {
    open.delete(value);
  }
}
