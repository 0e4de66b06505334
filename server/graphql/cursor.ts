/**
 * Page cursors: the position (finalization time, id) sealed with an HMAC over the viewer's user id,
 * so a cursor is opaque and worthless to anyone else (it is refused, not reinterpreted).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ConstatError } from '../../constat/errors.js';

/** `position` is the exact (microsecond) finalization time as text: a Date would round it. */
export interface PagePosition {
  position: string;
  id: string;
}

export interface CursorCodec {
  encode(viewer: string, position: PagePosition): string;
  decode(viewer: string, cursor: string): PagePosition;
}

const POSITION = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A real UTC instant in the form encode writes (2025-02-30 is not one). */
function isPosition(time: string): boolean {
  if (!POSITION.test(time)) return false;
  const parsed = new Date(time);
  return !Number.isNaN(parsed.getTime()) && parsed.toISOString().slice(0, 19) === time.slice(0, 19);
}

export function createCursorCodec(secret: string): CursorCodec {
  const mac = (viewer: string, body: string) =>
    createHmac('sha256', secret).update(`${viewer}\n${body}`).digest().subarray(0, 16);
  return {
    encode(viewer, { position, id }) {
      const body = `${position}|${id}`;
      return `${Buffer.from(body).toString('base64url')}.${mac(viewer, body).toString('base64url')}`;
    },
    decode(viewer, cursor) {
      const [bodyPart, macPart] = cursor.split('.');
      const body = bodyPart ? Buffer.from(bodyPart, 'base64url').toString() : '';
      const given = macPart ? Buffer.from(macPart, 'base64url') : Buffer.alloc(0);
      const expected = mac(viewer, body);
      const [time, id] = body.split('|');
      if (
        given.length !== expected.length ||
        !timingSafeEqual(given, expected) ||
        !time ||
        !id ||
        // Sealed by us, but checked anyway: what reaches SQL must be what encode wrote, so a
        // leaked or forged cursor is a clear BAD_USER_INPUT, never a failed cast.
        !isPosition(time) ||
        !UUID.test(id)
      ) {
        throw new ConstatError('BAD_USER_INPUT', 'invalid cursor', { field: 'after' });
      }
      return { position: time, id };
    },
  };
}
