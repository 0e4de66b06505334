/**
 * The content hash both parties sign: SHA-256 (hex) of the UTF-8 bytes of the RFC 8785
 * canonical JSON of the content roots (accident, vehicleA, vehicleB, sketch). meta and
 * signatures are left out because they describe the content rather than being part of it, and
 * because adding a signature must not change what the other party signed.
 */
import { createHash } from 'node:crypto';
import type * as Y from 'yjs';
import { canonicalJson, type JsonValue } from './canonical-json.js';
import { materialise } from './constat-doc.js';
import type { Role } from './permissions.js';

export function hashContent(content: JsonValue): string {
  return sha256Hex(canonicalJson(content));
}

/** SHA-256 (hex) of a canonical JSON text's UTF-8 bytes. */
export function sha256Hex(canonical: string): string {
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}

export function contentHash(doc: Y.Doc): string {
  return hashContent(materialise(doc));
}

/**
 * What a device signs (as UTF-8 bytes) with its Ed25519 key. The session id and role are in the
 * message so a signature cannot be replayed into another session or for the other party.
 */
export function signingMessage(sessionId: string, role: Role, hashHex: string): string {
  return `constat-sign:v1:${sessionId}:${role}:${hashHex}`;
}
