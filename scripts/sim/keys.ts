/**
 * A phone's signing key: Ed25519 (node:crypto), registered as its raw 32-byte public key in
 * base64, signing the UTF-8 bytes of `constat-sign:v1:<sessionId>:<role>:<hashHex>`.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { signingMessage } from '../../constat/content-hash.js';
import type { Role } from './graphql.js';

export interface DeviceKey {
  privateKey: KeyObject;
  /** The raw public key, base64 (what registerDevice takes). */
  publicKeyBase64: string;
}

export function newDeviceKey(): DeviceKey {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const x = publicKey.export({ format: 'jwk' }).x!;
  return { privateKey, publicKeyBase64: Buffer.from(x, 'base64url').toString('base64') };
}

/** The device's signature over a content hash, base64. */
export function signHash(key: DeviceKey, sessionId: string, role: Role, hashHex: string): string {
  return sign(
    null,
    Buffer.from(signingMessage(sessionId, role, hashHex), 'utf8'),
    key.privateKey,
  ).toString('base64');
}
