/**
 * The HTTP application: GraphQL, health, readiness and metrics. Every failure is rendered by
 * the one `onError` below; the websocket endpoint is attached to the Node server separately
 * (sync-endpoint.ts).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { Logger } from 'pino';
import type { TokenVerifier } from './auth.js';
import { bearerToken } from './auth.js';
import type { Metrics } from './metrics.js';
import type { ConstatYoga } from './graphql/yoga.js';
import type { GraphQLServices } from './graphql/context.js';
import { ConstatError } from '../constat/errors.js';
import { bodyLimit } from 'hono/body-limit';
import { viewerOf, type GraphQLContext } from './graphql/context.js';
import { createLoaders } from './graphql/loaders.js';
import { mountMediaRoutes, type MediaRoutesDeps } from './media-routes.js';
import { mountVerifyRoute, type VerifyRouteDeps } from './verify-route.js';
import { MediaStoreError } from '../media/media-store.js';
import { runAt } from './run-at.js';
import { endableEventStream } from './event-stream.js';
import type { HttpBindings } from '@hono/node-server';

// A subscriber cut off for not reading has this long to read its last event.
const CUT_OFF_GRACE_MS = 5_000;

export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

export interface AppDeps {
  verifier: TokenVerifier;
  yoga: ConstatYoga;
  services: GraphQLServices;
  metrics: Metrics;
  readiness: ReadinessCheck[];
  publicUrl: string | undefined;
  maxBodyBytes: number;
  /** `/metrics` on this app (false: it has a port of its own) and the bearer token it needs. */
  metricsHere: boolean;
  metricsToken: string | undefined;
  logger: Logger;
  /** Extra routes mounted as they are: the reference web app, development tokens. */
  routes?: Hono[];
  /** Optional features and their state (`available` or `unavailable: why`), shown by /readyz. */
  features?: Record<string, () => string>;
  /** The public verification page's data. */
  verify?: VerifyRouteDeps;
  /** The file store's signed upload and download endpoints (absent with S3). */
  media?: MediaRoutesDeps;
}

export function createApp(deps: AppDeps): Hono {
  const app = new Hono();

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  app.get('/readyz', async (c) => {
    const results = await Promise.all(
      deps.readiness.map(async ({ name, check }) => {
        try {
          await withTimeout(check(), 2_000);
          return [name, 'ok'] as const;
        } catch (err) {
          return [name, (err as Error).message || 'failed'] as const;
        }
      }),
    );
    const ready = results.every(([, r]) => r === 'ok');
    // An optional feature that is unavailable does not make the instance unready.
    const features = Object.fromEntries(
      Object.entries(deps.features ?? {}).map(([name, state]) => [name, state()]),
    );
    return c.json(
      { status: ready ? 'ready' : 'not ready', checks: Object.fromEntries(results), features },
      ready ? 200 : 503,
    );
  });

  if (deps.metricsHere) mountMetrics(app, deps.metrics, deps.metricsToken);

  const tooLarge = () =>
    new ConstatError('TOO_LARGE', `GraphQL documents are limited to ${deps.maxBodyBytes} bytes`);
  app.on(
    ['GET', 'POST'],
    '/graphql',
    bodyLimit({
      maxSize: deps.maxBodyBytes,
      onError: () => {
        throw tooLarge();
      },
    }),
    async (c) => {
      if (c.req.method === 'GET' && c.req.url.length > deps.maxBodyBytes) throw tooLarge();
      const token = bearerToken(c.req.header('authorization'));
      if (!token) throw new ConstatError('UNAUTHENTICATED', 'missing bearer token');
      const { principal, expiresAt } = await deps.verifier.verifyToken(token);
      const requestUrl = new URL(c.req.url);
      const base = new URL(
        deps.publicUrl ?? `${requestUrl.protocol}//${c.req.header('host') ?? requestUrl.host}`,
      );
      const publicHttpBase = base.origin;
      base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
      const viewer = viewerOf(principal);
      const context: GraphQLContext = {
        principal,
        viewer,
        services: deps.services,
        loaders: createLoaders(viewer, deps.services),
        publicWsBase: base.toString(),
        publicHttpBase,
      };
      const answer = await deps.yoga.fetch(c.req.raw, context);
      let response = answer;
      let cancel: () => void = () => void answer.body?.cancel().catch(() => {});
      if (answer.body && answer.headers.get('content-type')?.startsWith('text/event-stream')) {
        const stream = endableEventStream(
          answer,
          (c.env as Partial<HttpBindings> | undefined)?.outgoing,
          CUT_OFF_GRACE_MS,
        );
        // Read by the subscription when its subscriber falls behind (change-stream.ts).
        context.subscriber = stream.subscriber;
        response = stream.response;
        // A subscription outlives its request: like a websocket, it ends when the token it was
        // opened with expires (the client subscribes again with a fresh one).
        const expiry = runAt(expiresAt, () =>
          stream.subscriber.cutOff('UNAUTHENTICATED', 'token expired'),
        );
        cancel = () => {
          expiry.cancel();
          stream.cancel();
        };
      }
      // Yoga's stream does not see the node server's cancel: end a subscription as soon as its
      // client goes, not at the next keep-alive.
      c.req.raw.signal.addEventListener('abort', cancel, { once: true });
      return response;
    },
  );

  for (const routes of deps.routes ?? []) app.route('/', routes);
  if (deps.media) mountMediaRoutes(app, deps.media);
  if (deps.verify) mountVerifyRoute(app, deps.verify);

  app.notFound((c) => c.json({ error: { code: 'NOT_FOUND', message: 'no such route' } }, 404));

  app.onError((err, c) => {
    if (err instanceof ConstatError) {
      const status = HTTP_STATUS[err.code];
      // GraphQL clients expect the GraphQL error shape even for a refused request.
      if (c.req.path === '/graphql') {
        return c.json(
          { errors: [{ message: err.message, extensions: { code: err.code } }] },
          status,
        );
      }
      return c.json({ error: { code: err.code, message: err.message } }, status);
    }
    if (err instanceof HTTPException) return err.getResponse();
    if (err instanceof MediaStoreError) {
      deps.logger.warn({ err: err.message, path: c.req.path }, 'media store unavailable');
      return c.json({ error: { code: 'UNAVAILABLE', message: 'media store unavailable' } }, 503);
    }
    deps.logger.error({ err, path: c.req.path }, 'unhandled error');
    return c.json({ error: { code: 'INTERNAL', message: 'internal error' } }, 500);
  });

  return app;
}

/** `GET /metrics`, behind a bearer token when one is configured. */
export function mountMetrics(app: Hono, metrics: Metrics, token: string | undefined): void {
  const expected = token ? createHash('sha256').update(token).digest() : undefined;
  app.get('/metrics', async (c) => {
    if (expected) {
      const given = bearerToken(c.req.header('authorization'));
      // Compared as digests: equal lengths, and no timing hint about the token.
      const digest = createHash('sha256')
        .update(given ?? '')
        .digest();
      if (!given || !timingSafeEqual(digest, expected)) {
        c.header('WWW-Authenticate', 'Bearer realm="metrics"');
        return c.json({ error: { code: 'UNAUTHENTICATED', message: 'metrics need a token' } }, 401);
      }
    }
    c.header('Content-Type', metrics.registry.contentType);
    return c.body(await metrics.registry.metrics());
  });
}

/** The app of METRICS_PORT: `/metrics` only. */
export function createMetricsApp(metrics: Metrics, token: string | undefined): Hono {
  const app = new Hono();
  mountMetrics(app, metrics, token);
  app.notFound((c) => c.json({ error: { code: 'NOT_FOUND', message: 'no such route' } }, 404));
  return app;
}

export const HTTP_STATUS = {
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  BAD_USER_INPUT: 400,
  CONFLICT: 409,
  RATE_LIMITED: 429,
  GONE: 410,
  TOO_LARGE: 413,
  UNAVAILABLE: 503,
} as const satisfies Record<ConstatError['code'], number>;

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
