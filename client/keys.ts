/**
 * A phone's signing key: Ed25519 (node:crypto), registered as its raw 32-byte public key in
 * base64, signing the UTF-8 bytes of `constat-sign:v1:<sessionId>:<role>:<hashHex>`. The
 * message is spelled here from the contract (docs/signing.md), not taken from the server's
 * code: a phone and the server that agree by construction would prove nothing.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import type { Role } from '../constat/permissions.js';

export interface DeviceKey {
  publicKey: KeyObject;
  privateKey: KeyObject;
  /** The raw public key, base64 (what registerDevice takes). */
  publicKeyBase64: string;
}

export function newDeviceKey(): DeviceKey {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const x = publicKey.export({ format: 'jwk' }).x!;
  return { publicKey, privateKey, publicKeyBase64: Buffer.from(x, 'base64url').toString('base64') };
}

/** The signed message, as the contract spells it. */
export function signingMessage(sessionId: string, role: Role, hashHex: string): string {
  return `constat-sign:v1:${sessionId}:${role}:${hashHex}`;
}

/** Ed25519 over the UTF-8 bytes of `message`, base64. */
export function signText(key: DeviceKey, message: string): string {
  return sign(null, Buffer.from(message, 'utf8'), key.privateKey).toString('base64');
}

/** The device's signature over a content hash, base64. */
export function signHash(key: DeviceKey, sessionId: string, role: Role, hashHex: string): string {
  return signText(key, signingMessage(sessionId, role, hashHex));
}
