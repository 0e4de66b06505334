/**
 * The file store's own upload and download endpoints, `PUT|GET /v1/media/<key>`, authorised by
 * the HMAC-signed, expiring URL alone (media/signed-url.ts) so a device needs no token to send
 * the bytes, just as with a presigned S3 URL. Mounted only when the store is the file store.
 */
import type { Hono } from 'hono';
import { ConstatError } from '../constat/errors.js';
import type { MediaStore } from '../media/media-store.js';
import { MEDIA_PATH, verifyMediaRequest } from '../media/signed-url.js';

export interface MediaRoutesDeps {
  store: MediaStore;
  urlSecret: string;
  onUploaded?: (bytes: number) => void;
}

export function mountMediaRoutes(app: Hono, deps: MediaRoutesDeps): void {
  const grantFor = (method: 'GET' | 'PUT', url: string) => {
    const parsed = new URL(url);
    const key = decodeURIComponent(parsed.pathname.slice(MEDIA_PATH.length));
    const check = verifyMediaRequest(
      method,
      key,
      parsed.searchParams,
      deps.urlSecret,
      Math.floor(Date.now() / 1000),
    );
    if (!check.ok) {
      throw new ConstatError('FORBIDDEN', `media URL refused: ${check.reason.replace('-', ' ')}`);
    }
    return check.grant;
  };

  app.get(`${MEDIA_PATH}*`, async function mediaDownload(c) {
    const grant = grantFor('GET', c.req.url);
    const [info, body] = await Promise.all([deps.store.head(grant.key), deps.store.get(grant.key)]);
    if (!body) throw new ConstatError('NOT_FOUND', 'no such object');
    return c.body(body as Uint8Array<ArrayBuffer>, 200, {
      'content-type': info?.contentType ?? 'application/octet-stream',
      'content-length': String(body.byteLength),
      'cache-control': 'private, max-age=0',
      'x-content-type-options': 'nosniff',
    });
  });

  app.put(`${MEDIA_PATH}*`, async function mediaUpload(c) {
    const grant = grantFor('PUT', c.req.url);
    const declared = grant.byteSize ?? 0;
    if (c.req.header('content-type') !== grant.contentType) {
      throw new ConstatError(
        'BAD_USER_INPUT',
        `content-type must be ${grant.contentType}, as requested for the slot`,
      );
    }
    const length = Number(c.req.header('content-length'));
    if (c.req.header('content-length') !== undefined && length !== declared) {
      throw new ConstatError('BAD_USER_INPUT', `expected ${declared} bytes, got ${length}`);
    }
    const body = await readAtMost(c.req.raw, declared);
    if (body.byteLength !== declared) {
      throw new ConstatError(
        'BAD_USER_INPUT',
        `expected ${declared} bytes, got ${body.byteLength}`,
      );
    }
    // Stored files are never overwritten: what a signature covers stays what was signed.
    if (await deps.store.head(grant.key)) {
      throw new ConstatError('CONFLICT', 'this upload slot was already used');
    }
    await deps.store.put(grant.key, body, grant.contentType!);
    deps.onUploaded?.(body.byteLength);
    return c.body(null, 200);
  });
}

/** Reads the body, refusing it as soon as it goes past `limit` bytes. */
async function readAtMost(request: Request, limit: number): Promise<Uint8Array> {
  if (!request.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw new ConstatError('TOO_LARGE', `the slot allows ${limit} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total);
}
