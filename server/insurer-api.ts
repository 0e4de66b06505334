/**
 * The insurers' REST API (docs/integration.md):
 * - `POST /v1/oauth/token` — an access token for a signed client assertion (insurer-auth.ts);
 * - `POST /v1/insurers/{uid}/events` — a claim event, signed per Standard Webhooks with the
 *   client's body secret, through the Kafka consumer's decision (integrations/inbound-events.ts);
 * - `GET /v1/insurers/{uid}/constats?since=<cursor>` — the company's constats, oldest first;
 * - `GET /v1/insurers/{uid}/constats/{id}` — one of them, with its attachments.
 * A token is good for its own company's paths only.
 */
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Logger } from 'pino';
import { bearerToken } from './auth.js';
import { OAuthError, TOKEN_PATH, type InsurerAuth, type InsurerPrincipal } from './insurer-auth.js';
import type { CursorCodec } from './graphql/cursor.js';
import type { InsurerClientsRepository } from '../persistence/insurer-clients-repository.js';
import type { InsurerFeedRepository } from '../persistence/insurer-feed-repository.js';
import type { ConstatsRepository } from '../persistence/constats-repository.js';
import type { AttachmentService } from '../media/attachment-service.js';
import type { ConstatContent } from '../constat/constat-doc.js';
import { receiveInsurerEvent, type InboundDeps } from '../integrations/inbound-events.js';
import { activeSecrets, verifySignature } from '../integrations/webhook-signature.js';
import { ConstatError } from '../constat/errors.js';

export interface InsurerApiDeps {
  auth: InsurerAuth;
  clients: InsurerClientsRepository;
  inbound: InboundDeps;
  feed: InsurerFeedRepository;
  constats: ConstatsRepository;
  attachments: AttachmentService;
  cursors: CursorCodec;
  publicUrl: string | undefined;
  maxBodyBytes: number;
  maxPageSize: number;
  logger: Logger;
}

type Env = { Variables: { insurer: InsurerPrincipal } };

const error = (c: Context, status: 400 | 401 | 403 | 404 | 413, code: string, message: string) =>
  c.json({ error: { code, message } }, status);

export function createInsurerApiRoutes(deps: InsurerApiDeps): Hono {
  const app = new Hono<Env>();
  const log = deps.logger.child({ component: 'insurer-api' });

  app.post(TOKEN_PATH, async (c) => {
    c.header('Cache-Control', 'no-store');
    const form = await c.req.parseBody().catch(() => ({}));
    const fields = Object.fromEntries(
      Object.entries(form).filter((e): e is [string, string] => typeof e[1] === 'string'),
    );
    const origin = new URL(c.req.url).origin;
    const urls = [`${(deps.publicUrl ?? origin).replace(/\/$/, '')}${TOKEN_PATH}`];
    try {
      return c.json(await deps.auth.issueToken(fields, urls));
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      log.info({ code: err.code, why: err.message }, 'token refused');
      return c.json({ error: err.code, error_description: err.message }, err.status);
    }
  });

  app.use('/v1/insurers/:uid/*', async (c, next) => {
    const token = bearerToken(c.req.header('authorization'));
    if (!token) {
      c.header('WWW-Authenticate', 'Bearer realm="insurers"');
      return error(c, 401, 'UNAUTHENTICATED', `missing bearer token (see ${TOKEN_PATH})`);
    }
    let principal: InsurerPrincipal;
    try {
      principal = await deps.auth.verifyToken(token);
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      c.header('WWW-Authenticate', 'Bearer realm="insurers", error="invalid_token"');
      return error(c, 401, 'UNAUTHENTICATED', err.message);
    }
    if (principal.company !== c.req.param('uid')) {
      return error(c, 403, 'FORBIDDEN', `this token speaks for "${principal.company}"`);
    }
    c.set('insurer', principal);
    await next();
  });

  app.post(
    '/v1/insurers/:uid/events',
    bodyLimit({
      maxSize: deps.maxBodyBytes,
      onError: (c) =>
        error(c, 413, 'TOO_LARGE', `bodies are limited to ${deps.maxBodyBytes} bytes`),
    }),
    async (c) => {
      const { company, clientId } = c.get('insurer');
      const body = await c.req.text();
      const client = await deps.clients.get(clientId);
      const verified = verifySignature(
        activeSecrets(client?.bodySecrets ?? []),
        (name) => c.req.header(name),
        body,
      );
      if (!verified.ok) {
        log.warn({ company, clientId, reason: verified.reason }, 'event signature refused');
        return error(c, 401, 'BAD_SIGNATURE', verified.error);
      }
      const answer = await receiveInsurerEvent(company, c.req.raw.headers, body, deps.inbound);
      if (answer.status >= 400) log.info({ company, ...answer.body }, 'event refused');
      return c.json(answer.body, answer.status);
    },
  );

  app.get('/v1/insurers/:uid/constats', async (c) => {
    const { company } = c.get('insurer');
    const viewer = `insurer:${company}`;
    const since = c.req.query('since');
    const limitText = c.req.query('limit');
    const limit = limitText === undefined ? deps.maxPageSize : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > deps.maxPageSize) {
      return error(c, 400, 'BAD_USER_INPUT', `limit must be 1 to ${deps.maxPageSize}`);
    }
    let after;
    try {
      after = since ? deps.cursors.decode(viewer, since) : undefined;
    } catch (err) {
      if (err instanceof ConstatError)
        return error(c, 400, 'BAD_USER_INPUT', 'invalid since cursor');
      throw err;
    }
    const { rows, hasMore } = await deps.feed.page(company, after, limit);
    const last = rows.at(-1);
    return c.json({
      constats: rows.map((r) => ({
        id: r.id,
        formVersion: r.formVersion,
        contentHash: r.contentHash,
        insurers: { A: r.insurerA, B: r.insurerB },
        finalizedAt: r.finalizedAt.toISOString(),
      })),
      // Where to poll from next time: the last row's position, or the one given.
      next: last
        ? deps.cursors.encode(viewer, { position: last.position, id: last.id })
        : (since ?? null),
      hasMore,
    });
  });

  app.get('/v1/insurers/:uid/constats/:id', async (c) => {
    const { company } = c.get('insurer');
    const constat = await deps.constats.get(c.req.param('id'));
    // Another company's constat is as unknown as a missing one: nothing leaks.
    if (!constat || (constat.insurerA !== company && constat.insurerB !== company)) {
      return error(c, 404, 'NOT_FOUND', 'no such constat');
    }
    const attachments = await deps.attachments.forConstat(
      constat.sessionId,
      constat.content as ConstatContent,
    );
    return c.json({
      id: constat.id,
      formVersion: constat.formVersion,
      contentHash: constat.contentHash,
      content: constat.content,
      signatures: constat.signatures,
      insurers: { A: constat.insurerA, B: constat.insurerB },
      signedAt: constat.signedAt.toISOString(),
      finalizedAt: constat.finalizedAt.toISOString(),
      attachments,
    });
  });

  // Mounted like the other route groups (their context has no variables).
  return new Hono().route('/', app);
}
