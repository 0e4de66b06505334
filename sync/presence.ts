/**
 * Presence (Yjs awareness) entries as the server checks them. An awareness update is a list
 * of `(clientID, clock, state JSON)`; y-protocols applies any entry for any client id with any
 * JSON, so a party could rewrite the other's displayed name, or park a 100,000-deep array that
 * made every device joining afterwards fail while it was encoded for them. Here entries are
 * read one by one, so the session can keep only those a connection may write
 * (live-session.ts) and refuse states that are too large or too deep.
 *
 * Update layout (lib0 varints): varUint count · count × (varUint clientID · varUint clock ·
 * varString state JSON, "null" for a removal).
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import { ProtocolError } from './protocol.js';

/** A presence state is a name, a colour, a cursor: a few hundred bytes. */
export const MAX_PRESENCE_STATE_BYTES = 8 * 1024;
/** Objects/arrays nested in one state; a cursor's relative position needs about four. */
export const MAX_PRESENCE_STATE_DEPTH = 16;

export interface PresenceEntry {
  clientID: number;
  clock: number;
  /** The state as JSON text; "null" removes the client's presence. */
  state: string;
}

export function readPresenceUpdate(update: Uint8Array): PresenceEntry[] {
  const decoder = decoding.createDecoder(update);
  try {
    const count = decoding.readVarUint(decoder);
    const entries: PresenceEntry[] = [];
    for (let i = 0; i < count; i++) {
      entries.push({
        clientID: decoding.readVarUint(decoder),
        clock: decoding.readVarUint(decoder),
        state: decoding.readVarString(decoder),
      });
    }
    if (decoding.hasContent(decoder)) throw new Error('trailing bytes');
    return entries;
  } catch {
    throw new ProtocolError('malformed awareness update');
  }
}

export function writePresenceUpdate(entries: readonly PresenceEntry[]): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, entries.length);
  for (const e of entries) {
    encoding.writeVarUint(encoder, e.clientID);
    encoding.writeVarUint(encoder, e.clock);
    encoding.writeVarString(encoder, e.state);
  }
  return encoding.toUint8Array(encoder);
}

/** Why a state may not be kept, or undefined when it may. Never parses the JSON. */
export function presenceStateProblem(state: string): string | undefined {
  if (Buffer.byteLength(state, 'utf8') > MAX_PRESENCE_STATE_BYTES) {
    return `presence state exceeds ${MAX_PRESENCE_STATE_BYTES} bytes`;
  }
  if (jsonTextDepth(state) > MAX_PRESENCE_STATE_DEPTH) {
    return `presence state nests deeper than ${MAX_PRESENCE_STATE_DEPTH} levels`;
  }
  return undefined;
}

/** Deepest bracket nesting of a JSON text, ignoring brackets inside strings. One pass. */
export function jsonTextDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) deepest = Math.max(deepest, ++depth);
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return deepest;
}
