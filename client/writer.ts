/**
 * The phone side's form writers: plain JSON merged into a root the way a phone fills the form
 * (`writeSection`), and typing one character per update (`typeText`). The server never calls
 * them (it only reads the document); the simulator, the benchmarks and the tests do. The
 * layout they follow is the domain's (constat/constat-doc.ts).
 */
import * as Y from 'yjs';
import type { JsonObject, JsonValue } from '../constat/canonical-json.js';
import {
  ensureText,
  fieldKind,
  toJsonTree,
  type RootName,
  type YValue,
} from '../constat/constat-doc.js';

export interface WriteSectionOptions {
  /** Store text fields as plain strings instead of Y.Text (both are valid layouts). */
  plainStrings?: boolean;
}

/**
 * Merges plain JSON into a root, in one transaction, the way a phone fills the form:
 * - nested objects merge into nested Y.Maps (fields not mentioned are left alone);
 * - `null` deletes a field; `undefined` is skipped;
 * - text fields become Y.Text; an existing Y.Text is edited in place with the smallest change,
 *   so concurrent typing elsewhere in it survives;
 * - arrays replace the contents of the Y.Array (objects in them become Y.Maps);
 * - a set field (circumstances) given as an array of ids or as { id: true } becomes exactly that
 *   set of ticks: unlisted ticks are deleted, existing ones are left untouched;
 * - scalars and plain-object fields are only written when they differ, so rewriting the same
 *   value creates no update.
 */
export function writeSection(
  doc: Y.Doc,
  root: RootName,
  plain: JsonObject,
  origin?: unknown,
  options: WriteSectionOptions = {},
): void {
  const writer = new SectionWriter(root, options);
  doc.transact(() => writer.mergeMap(doc.getMap<YValue>(root), plain, []), origin ?? null);
}

class SectionWriter {
  constructor(
    private readonly root: RootName,
    private readonly options: WriteSectionOptions,
  ) {}

  mergeMap(map: Y.Map<YValue>, plain: JsonObject, path: readonly string[]): void {
    for (const [key, value] of Object.entries(plain)) {
      if (value === undefined) continue;
      if (value === null) {
        if (map.has(key)) map.delete(key);
        continue;
      }
      this.writeField(map, key, value, [...path, key]);
    }
  }

  private writeField(map: Y.Map<YValue>, key: string, value: JsonValue, path: string[]): void {
    const kind = fieldKind(this.root, path);
    const existing = map.get(key);
    if (kind === 'set') {
      this.writeSet(map, key, value, path);
    } else if (kind === 'atomic') {
      if (!sameJson(toJsonTree(existing), value)) map.set(key, structuredClone(value));
    } else if (kind === 'text' && typeof value === 'string' && !this.options.plainStrings) {
      if (existing instanceof Y.Text) {
        replaceText(existing, value);
      } else {
        const text = new Y.Text();
        map.set(key, text);
        text.insert(0, value);
      }
    } else if (Array.isArray(value)) {
      let array = existing;
      if (!(array instanceof Y.Array)) {
        array = new Y.Array<YValue>();
        map.set(key, array);
      }
      const yarray = array as Y.Array<YValue>;
      if (yarray.length > 0) yarray.delete(0, yarray.length);
      value.forEach((item, i) => this.insertItem(yarray, i, item, [...path, String(i)]));
    } else if (typeof value === 'object' && value !== null) {
      let child = existing;
      if (!(child instanceof Y.Map)) {
        child = new Y.Map<YValue>();
        map.set(key, child);
      }
      this.mergeMap(child as Y.Map<YValue>, value, path);
    } else if (existing !== value) {
      map.set(key, value);
    }
  }

  /** Appends one array item, converting it like a map field at the same path would be. */
  private insertItem(array: Y.Array<YValue>, index: number, item: JsonValue, path: string[]): void {
    const kind = fieldKind(this.root, path);
    if (kind === 'text' && typeof item === 'string' && !this.options.plainStrings) {
      const text = new Y.Text();
      array.insert(index, [text]);
      text.insert(0, item);
    } else if (kind !== 'atomic' && Array.isArray(item)) {
      const child = new Y.Array<YValue>();
      array.insert(index, [child]);
      item.forEach((v, i) => this.insertItem(child, i, v, [...path, String(i)]));
    } else if (kind !== 'atomic' && isJsonObject(item)) {
      const child = new Y.Map<YValue>();
      array.insert(index, [child]);
      this.mergeMap(child, item, path);
    } else {
      array.insert(index, [structuredClone(item)]);
    }
  }

  private writeSet(map: Y.Map<YValue>, key: string, value: JsonValue, path: string[]): void {
    const wanted = setMembers(value, path);
    let set = map.get(key);
    if (!(set instanceof Y.Map)) {
      set = new Y.Map<true>();
      map.set(key, set);
    }
    const ymap = set as Y.Map<YValue>;
    for (const id of [...ymap.keys()]) if (!wanted.has(id)) ymap.delete(id);
    // Re-setting an existing tick would create a new item for nothing.
    for (const id of wanted) if (ymap.get(id) !== true) ymap.set(id, true);
  }
}

function isJsonObject(value: JsonValue): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function setMembers(value: JsonValue, path: readonly string[]): Set<string> {
  if (Array.isArray(value)) {
    return new Set(
      value.map((v) => {
        if (typeof v !== 'number' && typeof v !== 'string') {
          throw new TypeError(`${path.join('.')}: set members must be ids, got ${typeof v}`);
        }
        return String(v);
      }),
    );
  }
  if (typeof value === 'object' && value !== null) {
    return new Set(Object.keys(value).filter((k) => value[k] === true));
  }
  throw new TypeError(`${path.join('.')}: expected an array of ids or an { id: true } object`);
}

/** Edits a Y.Text into `next` by replacing only the span that differs. */
function replaceText(text: Y.Text, next: string): void {
  const current = text.toString();
  if (current === next) return;
  let start = 0;
  const max = Math.min(current.length, next.length);
  while (start < max && current.charCodeAt(start) === next.charCodeAt(start)) start++;
  let end = 0;
  while (
    end < max - start &&
    current.charCodeAt(current.length - 1 - end) === next.charCodeAt(next.length - 1 - end)
  ) {
    end++;
  }
  const removed = current.length - start - end;
  if (removed > 0) text.delete(start, removed);
  const inserted = next.slice(start, next.length - end);
  if (inserted.length > 0) text.insert(start, inserted);
}

function sameJson(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) &&
      Array.isArray(b) &&
      a.length === b.length &&
      a.every((v, i) => sameJson(v, b[i]))
    );
  }
  const keys = Object.keys(a);
  return (
    keys.length === Object.keys(b).length &&
    keys.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]))
  );
}

/**
 * Types `text` into the Y.Text at `path` one character per transaction, as a phone keyboard
 * would, creating the nested maps and the Y.Text when missing. An existing plain string at that
 * path is converted to a Y.Text first. Iterates by code point so an emoji's surrogate pair is
 * never split across two updates.
 */
export function typeText(
  doc: Y.Doc,
  root: RootName,
  path: readonly string[],
  text: string,
  origin?: unknown,
): void {
  if (path.length === 0) throw new TypeError('typeText: path must name a field');
  const target = doc.transact(() => ensureText(doc.getMap<YValue>(root), path), origin ?? null);
  for (const ch of text) {
    doc.transact(() => target.insert(target.length, ch), origin ?? null);
  }
}
