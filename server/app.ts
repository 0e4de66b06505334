/**
 * The HTTP application: GraphQL, health, readiness and metrics. Every failure is rendered by
 * the one `onError` below; the websocket endpoint is attached to the Node server separately
 * (sync-endpoint.ts).
 */
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { Logger } from 'pino';
import type { TokenVerifier } from './auth.js';
import { bearerToken } from './auth.js';
import type { Metrics } from './metrics.js';
import type { ConstatYoga } from './graphql/yoga.js';
import type { GraphQLServices } from './graphql/context.js';
import { ConstatError } from '../sync/errors.js';
import { bodyLimit } from 'hono/body-limit';
import { viewerOf, type GraphQLContext } from './graphql/context.js';
import { createLoaders } from './graphql/loaders.js';
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
  logger: Logger;
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
    return c.json(
      { status: ready ? 'ready' : 'not ready', checks: Object.fromEntries(results) },
      ready ? 200 : 503,
    );
  });

  app.get('/metrics', async (c) => {
    c.header('Content-Type', deps.metrics.registry.contentType);
    return c.body(await deps.metrics.registry.metrics());
  });

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
      const principal = await deps.verifier.verify(token);
      const requestUrl = new URL(c.req.url);
      const base = new URL(
        deps.publicUrl ?? `${requestUrl.protocol}//${c.req.header('host') ?? requestUrl.host}`,
      );
      base.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:';
      const viewer = viewerOf(principal);
      const context: GraphQLContext = {
        principal,
        viewer,
        services: deps.services,
        loaders: createLoaders(viewer, deps.services.constats, deps.services.timeline),
        publicWsBase: base.toString(),
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
        cancel = stream.cancel;
      }
      // Yoga's stream does not see the node server's cancel: end a subscription as soon as its
      // client goes, not at the next keep-alive.
      c.req.raw.signal.addEventListener('abort', cancel, { once: true });
      return response;
    },
  );

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
    deps.logger.error({ err, path: c.req.path }, 'unhandled error');
    return c.json({ error: { code: 'INTERNAL', message: 'internal error' } }, 500);
  });

  return app;
}

const HTTP_STATUS = {
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
