/**
 * The websocket message codec: the standard Yjs sync and awareness messages (so a stock
 * `y-websocket` client works unchanged) plus one message type of our own for session events.
 *
 * Flow: on connect both sides send sync step 1 (their state vector); each answers with sync
 * step 2 (what the other lacks); from then on every local change travels as an update.
 * Awareness (cursors, who is here) is a separate, unpersisted channel.
 *
 * Message layout (lib0 varints):
 *   0 sync       · varUint subtype (0 step1 · 1 step2 · 2 update) · varUint8Array payload
 *   1 awareness  · varUint8Array awareness update
 *   3 query-awareness (no payload)
 *   100 event    · varString JSON `{ "type": …, … }`  (server → device only)
 *
 * Decoding is strict: a message must be fully consumed, so a truncated or padded frame is
 * refused rather than half-applied.
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';

export const MessageType = {
  sync: 0,
  awareness: 1,
  auth: 2,
  queryAwareness: 3,
  event: 100,
} as const;

export const SyncType = { step1: 0, step2: 1, update: 2 } as const;

export type SessionEvent =
  | { type: 'signed'; role: 'A' | 'B'; hash: string }
  | { type: 'signatures-voided'; reason: string }
  | { type: 'finalized'; constatId: string }
  | { type: 'rejected-update'; reason: string; code: string }
  | { type: 'expiring'; expiresAt: string };

export type IncomingMessage =
  | { kind: 'sync-step1'; stateVector: Uint8Array }
  | { kind: 'sync-step2'; update: Uint8Array }
  | { kind: 'update'; update: Uint8Array }
  | { kind: 'awareness'; update: Uint8Array }
  | { kind: 'query-awareness' };

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/** Reads one device → server message. Throws ProtocolError on anything malformed. */
export function readMessage(frame: Uint8Array): IncomingMessage {
  const decoder = decoding.createDecoder(frame);
  let message: IncomingMessage;
  try {
    const type = decoding.readVarUint(decoder);
    switch (type) {
      case MessageType.sync: {
        const subtype = decoding.readVarUint(decoder);
        const payload = decoding.readVarUint8Array(decoder);
        if (subtype === SyncType.step1) message = { kind: 'sync-step1', stateVector: payload };
        else if (subtype === SyncType.step2) message = { kind: 'sync-step2', update: payload };
        else if (subtype === SyncType.update) message = { kind: 'update', update: payload };
        else throw new ProtocolError(`unknown sync message subtype ${subtype}`);
        break;
      }
      case MessageType.awareness:
        message = { kind: 'awareness', update: decoding.readVarUint8Array(decoder) };
        break;
      case MessageType.queryAwareness:
        message = { kind: 'query-awareness' };
        break;
      default:
        throw new ProtocolError(`unsupported message type ${type}`);
    }
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError(`malformed message: ${(err as Error).message}`);
  }
  if (decoding.hasContent(decoder)) {
    throw new ProtocolError('malformed message: trailing bytes');
  }
  return message;
}

export function writeSyncStep1(stateVector: Uint8Array): Uint8Array {
  return writeSync(SyncType.step1, stateVector);
}

export function writeSyncStep2(update: Uint8Array): Uint8Array {
  return writeSync(SyncType.step2, update);
}

export function writeUpdate(update: Uint8Array): Uint8Array {
  return writeSync(SyncType.update, update);
}

function writeSync(subtype: number, payload: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MessageType.sync);
  encoding.writeVarUint(encoder, subtype);
  encoding.writeVarUint8Array(encoder, payload);
  return encoding.toUint8Array(encoder);
}

export function writeAwareness(update: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MessageType.awareness);
  encoding.writeVarUint8Array(encoder, update);
  return encoding.toUint8Array(encoder);
}

export function writeQueryAwareness(): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MessageType.queryAwareness);
  return encoding.toUint8Array(encoder);
}

export function writeSessionEvent(event: SessionEvent): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MessageType.event);
  encoding.writeVarString(encoder, JSON.stringify(event));
  return encoding.toUint8Array(encoder);
}

/** Device side: reads a session event message (type 100). Returns undefined for other types. */
export function readSessionEvent(frame: Uint8Array): SessionEvent | undefined {
  const decoder = decoding.createDecoder(frame);
  if (decoding.readVarUint(decoder) !== MessageType.event) return undefined;
  return JSON.parse(decoding.readVarString(decoder)) as SessionEvent;
}
