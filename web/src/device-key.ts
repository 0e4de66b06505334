/**
 * The device's Ed25519 key: made with WebCrypto, kept in IndexedDB as a CryptoKey whose private
 * half is not extractable (scripts on the page can use it to sign, never read it out), and
 * registered with the server once per user. docs/signing.md says what is signed.
 */
import { get, set } from 'idb-keyval';
import type { Api } from './api.js';
import { toBase64 } from './input-rules.js';

interface StoredKey {
  keyPair: CryptoKeyPair;
  publicKey: string;
  /** User ids this key was registered for. */
  registeredFor: string[];
}

const KEY = 'constat.device-key';

async function loadOrCreate(): Promise<StoredKey> {
  const stored = await get<StoredKey>(KEY);
  if (stored) return stored;
  const keyPair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const raw = new Uint8Array(await crypto.subtle.exportKey('raw', keyPair.publicKey));
  const created: StoredKey = { keyPair, publicKey: toBase64(raw), registeredFor: [] };
  await set(KEY, created);
  return created;
}

/** The key, registered for `userId` (one `registerDevice` call the first time only). */
export async function deviceKey(api: Api, userId: string): Promise<StoredKey> {
  const key = await loadOrCreate();
  if (!key.registeredFor.includes(userId)) {
    await api.request(
      `mutation Register($publicKey: String!) { registerDevice(publicKey: $publicKey) { deviceId } }`,
      { publicKey: key.publicKey },
    );
    key.registeredFor.push(userId);
    await set(KEY, key);
  }
  return key;
}

/** base64 Ed25519 signature over `constat-sign:v1:<sessionId>:<role>:<hash>`. */
export async function signContent(
  key: StoredKey,
  sessionId: string,
  role: 'A' | 'B',
  hash: string,
): Promise<string> {
  const message = new TextEncoder().encode(`constat-sign:v1:${sessionId}:${role}:${hash}`);
  const signature = await crypto.subtle.sign({ name: 'Ed25519' }, key.keyPair.privateKey, message);
  return toBase64(new Uint8Array(signature));
}
