/**
 * A hand encoder for Yjs update format v1 (yjs/src/utils/encoding.js, Item.write), for structs
 * no Yjs document would emit on its own: GC and Skip structs under someone else's client id,
 * forged parents, delete sets over clocks nobody has written yet.
 */
import * as encoding from 'lib0/encoding';

export type RawContent =
  { string: string } | { any: unknown[] } | { type: 'array' | 'map' | 'text' };
export type RawId = readonly [client: number, clock: number];
export type RawStruct =
  | { gc: number }
  | { skip: number }
  | {
      origin?: RawId;
      rightOrigin?: RawId;
      parent?: string | RawId;
      parentSub?: string;
      content: RawContent;
    };

const TYPE_REFS = { array: 0, map: 1, text: 2 } as const;

export function encodeRaw(
  clients: Array<{ client: number; clock: number; structs: RawStruct[] }>,
  deletes: Array<{ client: number; ranges: Array<readonly [clock: number, len: number]> }> = [],
): Uint8Array {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, clients.length);
  for (const { client, clock, structs } of clients) {
    encoding.writeVarUint(e, structs.length);
    encoding.writeVarUint(e, client);
    encoding.writeVarUint(e, clock);
    for (const s of structs) {
      if ('gc' in s) {
        encoding.writeUint8(e, 0);
        encoding.writeVarUint(e, s.gc);
        continue;
      }
      if ('skip' in s) {
        encoding.writeUint8(e, 10);
        encoding.writeVarUint(e, s.skip);
        continue;
      }
      const { content } = s;
      const ref = 'string' in content ? 4 : 'any' in content ? 8 : 7;
      encoding.writeUint8(
        e,
        ref |
          (s.origin ? 0x80 : 0) |
          (s.rightOrigin ? 0x40 : 0) |
          (s.parentSub !== undefined ? 0x20 : 0),
      );
      if (s.origin) s.origin.forEach((n) => encoding.writeVarUint(e, n));
      if (s.rightOrigin) s.rightOrigin.forEach((n) => encoding.writeVarUint(e, n));
      if (!s.origin && !s.rightOrigin) {
        if (typeof s.parent === 'string') {
          encoding.writeVarUint(e, 1);
          encoding.writeVarString(e, s.parent);
        } else {
          encoding.writeVarUint(e, 0);
          s.parent!.forEach((n) => encoding.writeVarUint(e, n));
        }
        if (s.parentSub !== undefined) encoding.writeVarString(e, s.parentSub);
      }
      if ('string' in content) encoding.writeVarString(e, content.string);
      else if ('any' in content) {
        encoding.writeVarUint(e, content.any.length);
        for (const value of content.any) encoding.writeAny(e, value as encoding.AnyEncodable);
      } else encoding.writeVarUint(e, TYPE_REFS[content.type]);
    }
  }
  encoding.writeVarUint(e, deletes.length);
  for (const { client, ranges } of deletes) {
    encoding.writeVarUint(e, client);
    encoding.writeVarUint(e, ranges.length);
    for (const [clock, len] of ranges) {
      encoding.writeVarUint(e, clock);
      encoding.writeVarUint(e, len);
    }
  }
  return encoding.toUint8Array(e);
}
