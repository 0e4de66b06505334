/**
 * Signed, expiring URLs for the file store, whose uploads and downloads the server serves
 * itself. The HMAC covers the method, the key, the expiry and (for uploads) the declared type and
 * length, so a URL cannot be reused for another object, another verb, or a bigger body.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface MediaGrant {
  method: 'GET' | 'PUT';
  key: string;
  /** Unix seconds after which the URL is refused. */
  expires: number;
  contentType?: string;
  byteSize?: number;
}

export const MEDIA_PATH = '/v1/media/';

function mac(grant: MediaGrant, secret: string): string {
  const material = [
    'constat-media:v1',
    grant.method,
    grant.key,
    String(grant.expires),
    grant.contentType ?? '',
    grant.byteSize === undefined ? '' : String(grant.byteSize),
  ].join('\n');
  return createHmac('sha256', secret).update(material).digest('base64url');
}

/** The path and query of a signed URL (the caller puts its own origin in front). */
export function signedMediaPath(grant: MediaGrant, secret: string): string {
  const query = new URLSearchParams({ exp: String(grant.expires) });
  if (grant.method === 'PUT') {
    query.set('type', grant.contentType ?? '');
    query.set('len', String(grant.byteSize ?? 0));
  }
  query.set('sig', mac(grant, secret));
  return `${MEDIA_PATH}${grant.key.split('/').map(encodeURIComponent).join('/')}?${query}`;
}

export type GrantCheck =
  | { ok: true; grant: MediaGrant }
  | { ok: false; reason: 'malformed' | 'expired' | 'bad-signature' };

/** Checks a request against its signature; `now` in unix seconds. */
export function verifyMediaRequest(
  method: 'GET' | 'PUT',
  key: string,
  query: URLSearchParams,
  secret: string,
  now: number,
): GrantCheck {
  const expires = Number(query.get('exp'));
  const sig = query.get('sig');
  if (!Number.isSafeInteger(expires) || !sig) return { ok: false, reason: 'malformed' };
  const grant: MediaGrant = { method, key, expires };
  if (method === 'PUT') {
    const len = Number(query.get('len'));
    const type = query.get('type');
    if (!Number.isSafeInteger(len) || len < 0 || !type) return { ok: false, reason: 'malformed' };
    grant.contentType = type;
    grant.byteSize = len;
  }
  const expected = Buffer.from(mac(grant, secret));
  const given = Buffer.from(sig);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    return { ok: false, reason: 'bad-signature' };
  }
  // Checked after the signature so an attacker learns nothing from the order of refusals.
  if (expires < now) return { ok: false, reason: 'expired' };
  return { ok: true, grant };
}
