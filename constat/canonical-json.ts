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
  return serialise(value);
}

/** A container being written: its members still to write, and what they became. */
interface Frame {
  readonly value: object;
  readonly path: string;
  /** Object keys (sorted), or null for an array. */
  readonly keys: string[] | null;
  readonly length: number;
  next: number;
  readonly parts: string[];
}

/**
 * Iterative, with an explicit stack: content comes from phones, and a recursive writer would
 * overflow the stack on a value nested a few thousand levels deep.
 */
function serialise(root: unknown, rootPath = '$'): string {
  const open = new Set<object>();
  const stack: Frame[] = [];
  // Writes a scalar, or opens a frame for a container (and returns undefined).
  const visit = (value: unknown, path: string): string | undefined => {
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
        stack.push(openFrame(value, path, open));
        return undefined;
      default:
        throw new CanonicalJsonError(`${typeof value} is not a JSON value`, path);
    }
  };
  let result = visit(root, rootPath);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.next < top.length) {
      const i = top.next++;
      let text: string | undefined;
      if (top.keys === null) {
        const itemPath = `${top.path}[${i}]`;
        if (!(i in top.value)) throw new CanonicalJsonError('hole in array', itemPath);
        text = visit((top.value as unknown[])[i], itemPath);
      } else {
        const key = top.keys[i]!;
        text = visit((top.value as Record<string, unknown>)[key], `${top.path}.${key}`);
      }
      if (text !== undefined) addPart(top, text);
      continue;
    }
    stack.pop();
    open.delete(top.value);
    const text = top.keys === null ? `[${top.parts.join(',')}]` : `{${top.parts.join(',')}}`;
    const parent = stack[stack.length - 1];
    if (parent) addPart(parent, text);
    else result = text;
  }
  return result!;
}

function addPart(frame: Frame, text: string): void {
  // The member just written is the one before `next`.
  frame.parts.push(
    frame.keys === null ? text : `${JSON.stringify(frame.keys[frame.next - 1])}:${text}`,
  );
}

function openFrame(value: object, path: string, open: Set<object>): Frame {
  if (open.has(value)) throw new CanonicalJsonError('cycle', path);
  if (Array.isArray(value)) {
    open.add(value);
    return { value, path, keys: null, length: value.length, next: 0, parts: [] };
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    const name = (value as { constructor?: { name?: string } }).constructor?.name ?? 'object';
    throw new CanonicalJsonError(`${name} is not a plain JSON object`, path);
  }
  open.add(value);
  // Default sort compares UTF-16 code units, which is exactly the order RFC 8785 asks for.
  const keys = Object.keys(value).sort();
  return { value, path, keys, length: keys.length, next: 0, parts: [] };
}
