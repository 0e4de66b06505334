/**
 * `GET /verify/{constatId}?h={hash}`: the public verification page (report/verify-page.ts).
 * No token: whoever holds the printed report holds the hash. HTML by default, JSON when the
 * client asks for it (`Accept: application/json`).
 */
import type { Hono } from 'hono';
import type { ConstatsRepository } from '../persistence/constats-repository.js';
import type { DocumentsRepository } from '../persistence/documents-repository.js';
import { ConstatError } from '../constat/errors.js';
import { HASH_PATTERN, verifyConstat, verifyPageHtml } from '../report/verify-page.js';

export interface VerifyRouteDeps {
  constats: Pick<ConstatsRepository, 'get'>;
  documents: Pick<DocumentsRepository, 'listFor'>;
}

export function mountVerifyRoute(app: Hono, deps: VerifyRouteDeps): void {
  app.get('/verify/:constatId', async function verifyPage(c) {
    const h = (c.req.query('h') ?? '').toLowerCase();
    if (!HASH_PATTERN.test(h)) {
      throw new ConstatError('BAD_USER_INPUT', 'h must be a SHA-256 hash: 64 hex digits', {
        field: 'h',
      });
    }
    const id = c.req.param('constatId');
    const [constat, documents] = await Promise.all([
      deps.constats.get(id),
      deps.documents.listFor([id]),
    ]);
    const outcome = verifyConstat(constat, documents.get(id) ?? [], h);
    // Nothing here may be cached by a proxy in front of the next person's request.
    c.header('cache-control', 'no-store');
    c.header('x-robots-tag', 'noindex');
    const status = outcome.match ? 200 : 404;
    if ((c.req.header('accept') ?? '').includes('application/json')) return c.json(outcome, status);
    return c.html(verifyPageHtml(outcome), status);
  });
}
