/**
 * Assembles one server instance from its configuration: storage, session store, hub, live
 * documents, HTTP app and websocket endpoint. `stop()` releases everything in reverse order
 * and works even when start-up failed half way.
 */
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { createTokenVerifier } from './auth.js';
import { Metrics } from './metrics.js';
import { createApp, createMetricsApp, type ReadinessCheck } from './app.js';
import { createGraphQL } from './graphql/yoga.js';
import { createSyncEndpoint } from './sync-endpoint.js';
import { createWebAppRoutes } from './web-app.js';
import { createDevTokenRoutes } from './dev-token.js';
import { listen } from './http.js';
import { openDatabase, type Database } from '../persistence/database.js';
import { migrate } from '../persistence/migrate.js';
import { createDraftsRepository } from '../persistence/drafts-repository.js';
import { createWorkerFolds } from '../persistence/draft-folds.js';
import { DraftFolder } from '../sync/draft-folder.js';
import { createYjsOffload } from '../sync/yjs-offload.js';
import { createSessionsRepository } from '../persistence/sessions-repository.js';
import { createConstatsRepository } from '../persistence/constats-repository.js';
import { createDevicesRepository } from '../persistence/devices-repository.js';
import { createFinalizer } from '../finalization/finalizer.js';
import { CompanyRegistry } from '../integrations/company-registry.js';
import type { KafkaIntegration } from '../integrations/kafka-integration.js';
import { createCompaniesRepository } from '../persistence/companies-repository.js';
import { createOutboxRepository } from '../persistence/outbox-repository.js';
import { createTimelineRepository } from '../persistence/timeline-repository.js';
import { SigningService } from '../sync/signing-service.js';
import { decide, storeEvent } from '../integrations/event-consumer.js';
import { createEventValidator } from '../integrations/event-validator.js';
import { AI_RESULTS_TOPIC, CONSTATS_TOPIC } from '../integrations/events.js';
import { startEmbeddedAi, type EmbeddedAi } from '../ai/embedded.js';
import { createChangePubSub } from './graphql/pubsub.js';
import { createCursorCodec } from './graphql/cursor.js';
import { redisKeys } from '../hub/redis-keys.js';
import { MemoryHub, type Hub } from '../sync/hub.js';
import { RedisHub } from '../hub/redis-hub.js';
import { Compactor } from '../hub/compactor.js';
import { LiveSessions } from '../sync/live-sessions.js';
import { compaction, draftSaves } from '../sync/durability.js';
import { SessionService } from '../sync/session-service.js';
import { createMediaStore } from '../media/create-media-store.js';
import { createDocumentsRepository } from '../persistence/documents-repository.js';
import { createReportService } from '../report/report-service.js';
import { AttachmentService } from '../media/attachment-service.js';
import { createAttachmentsRepository } from '../persistence/attachments-repository.js';
import type { DeliveryChannel } from '../integrations/delivery-channel.js';
import { startWebhooks } from './webhooks.js';
import { createInsurerApiRoutes } from './insurer-api.js';
import { createInsurerAuth } from './insurer-auth.js';
import { createInsurerClientsRepository } from '../persistence/insurer-clients-repository.js';
import { createInsurerFeedRepository } from '../persistence/insurer-feed-repository.js';

export interface RunningServer {
  /** http://host:port of this instance. */
  url: string;
  port: number;
  metrics: Metrics;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Redis key prefix (tests give each run its own keyspace). */
  redisPrefix?: string;
}

let aiValidator: ReturnType<typeof createEventValidator> | undefined;

/**
 * The embedded AI service (no broker): its tables in schema `ai` of this database, or in its
 * own database when AI_DATABASE_URL is set.
 */
async function startAi(
  config: Config,
  db: Database,
  logger: Logger,
  cleanups: Array<() => Promise<void>>,
  io: {
    deliver: (event: import('../integrations/events.js').CloudEvent) => Promise<void>;
    registry: import('prom-client').Registry;
    media: import('../media/media-store.js').MediaStore;
  },
): Promise<EmbeddedAi> {
  // Pools of its own, so its statements (its tables, and polling the outbox) never queue
  // behind or count as the server's; only PGlite, which takes a single connection, is shared.
  const open = async (url: string) => {
    const own = await openDatabase({
      databaseUrl: url,
      dataDir: config.dataDir,
      logger,
      poolMax: 2,
    });
    cleanups.push(() => own.close());
    return own.sql;
  };
  const sql = config.ai.databaseUrl
    ? await open(config.ai.databaseUrl)
    : config.databaseUrl
      ? await open(config.databaseUrl)
      : db.sql;
  const feedSql = !config.databaseUrl
    ? db.sql
    : config.ai.databaseUrl
      ? await open(config.databaseUrl)
      : sql;
  const outbox = createOutboxRepository(feedSql);
  const ai = await startEmbeddedAi({
    sql,
    settings: config.ai,
    feed: { read: (after, limit) => outbox.readTopic(CONSTATS_TOPIC, after, limit) },
    results: async (_constatId, events) => {
      for (const event of events) await io.deliver(event);
    },
    logger,
    registry: io.registry,
    pollMs: config.kafka.outboxPollMs,
    media: io.media,
  });
  cleanups.push(() => ai.close());
  return ai;
}

export async function startServer(
  config: Config,
  logger: Logger,
  options: StartOptions = {},
): Promise<RunningServer> {
  const cleanups: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (err) {
        logger.error({ err }, 'error while stopping');
      }
    }
  };
  try {
    const metrics = new Metrics();
    const readiness: ReadinessCheck[] = [];

    // The file store's URLs point at this instance; its port is known only once it listens.
    let ownUrl = config.publicUrl?.replace(/\/$/, '') ?? '';
    const media = await createMediaStore(config.media.store, () => ownUrl);
    cleanups.push(() => media.close());
    readiness.push({
      name: `media (${media.kind})`,
      check: async () => {
        if (!(await media.ready())) throw new Error('media store unreachable');
      },
    });

    const db: Database = await openDatabase({
      databaseUrl: config.databaseUrl,
      dataDir: config.dataDir,
      template: config.pgliteTemplate,
      logger,
      onStatement: () => metrics.sqlStatements.inc(),
    });
    cleanups.push(() => db.close());
    await migrate(db.sql, logger);
    readiness.push({ name: 'database', check: async () => void (await db.sql`select 1`) });
    const drafts = createDraftsRepository(db.sql);
    // Closed after the live documents (cleanups run in reverse): their last saves fold here.
    const offload = createYjsOffload();
    cleanups.push(() => offload.close());
    // With a database server, folds (megabytes read and written) run on a thread of their
    // own with its own connection; the embedded database takes one connection: folds run here.
    const workerFolds = config.databaseUrl
      ? createWorkerFolds({ databaseUrl: config.databaseUrl })
      : undefined;
    if (workerFolds) cleanups.push(() => workerFolds.close());
    const folder = new DraftFolder({
      drafts,
      offload,
      logger,
      ...(workerFolds ? { runner: (sessionId: string) => workerFolds.fold(sessionId) } : {}),
      onFolded: (ms) => metrics.draftFolds.observe(ms / 1000),
    });
    cleanups.push(() => folder.close());

    // Sessions live in the database in every deployment: Redis keeps nothing on disk, and a
    // Redis loss must not forget who the parties of a session are.
    const store = createSessionsRepository(db.sql);
    let hub: Hub = new MemoryHub();
    let compactor: Compactor | undefined;
    let pubsub = createChangePubSub();
    if (config.redisUrl) {
      const connect = async (name: string) => {
        const redis = new Redis(config.redisUrl!, {
          lazyConnect: true,
          connectionName: `constat-${name}`,
        });
        redis.on('error', (err) =>
          logger.warn({ err: err.message, connection: name }, 'redis connection error'),
        );
        cleanups.push(async () => void (await redis.quit().catch(() => redis.disconnect())));
        await redis.connect();
        return redis;
      };
      const redis = await connect('commands');
      const subscriber = await connect('hub-notices');
      // Subscriptions cross instances through Redis pub/sub.
      pubsub = createChangePubSub({
        publish: redis,
        subscribe: await connect('subscriptions'),
        prefix: `${config.redisKeyPrefix}changes:`,
        logger,
      });
      const keys = redisKeys(config.redisKeyPrefix);
      readiness.push({ name: 'redis', check: async () => void (await redis.ping()) });
      // A session's keys outlive it by a day: only those of a session that ended expire.
      const keyExpiryMs = config.sessions.ttlMs + 24 * 3600_000;
      hub = new RedisHub({
        redis,
        subscriber,
        keys,
        logger,
        readCount: config.hub.readCount,
        compactionDelayMs: config.hub.compactionIntervalMs,
        membersExpiryMs: keyExpiryMs,
        onReadLag: (ms) => metrics.hubReadLag.observe(ms / 1000),
        onStreamLost: () => metrics.hubStreamsLost.inc(),
      });
      compactor = new Compactor({
        redis,
        keys,
        drafts,
        folder,
        offload,
        logger,
        intervalMs: config.hub.compactionIntervalMs,
        delayMs: config.hub.compactionIntervalMs,
        minLifetimeMs: config.hub.minMessageLifetimeMs,
        keyExpiryMs,
        ...(workerFolds
          ? {
              lacking: (sessionId: string, extra: Uint8Array) =>
                workerFolds.lacking(sessionId, extra),
            }
          : {}),
        onCompacted: (ms) => metrics.compactions.observe(ms / 1000),
        onFailed: () => metrics.compactionFailures.inc(),
      });
      const c = compactor;
      c.start();
      cleanups.push(() => c.close());
      metrics.trackStreams(async () => {
        const sessions = [...live.ids()];
        if (sessions.length === 0) return 0;
        const pipeline = redis.pipeline();
        for (const id of sessions) pipeline.xlen(keys.updates(id));
        const lengths = (await pipeline.exec()) ?? [];
        return lengths.reduce((sum, [, n]) => sum + Number(n ?? 0), 0);
      });
    }
    const sharedHub = hub;
    cleanups.push(() => sharedHub.close());

    const constats = createConstatsRepository(db.sql);
    const timeline = createTimelineRepository(db.sql);
    const changes = {
      session: (id: string) => pubsub.publish('sessionChanged', id, { id }),
      constat: (id: string) => pubsub.publish('constatChanged', id, { id }),
    };
    const registry = new CompanyRegistry(createCompaniesRepository(db.sql), logger);
    await registry.start(config.kafka.registryRefreshMs);
    cleanups.push(async () => registry.close());
    let kafka: KafkaIntegration | undefined;
    if (config.kafkaBrokers) {
      // The Kafka client is loaded only when a broker is configured.
      const { KafkaIntegration } = await import('../integrations/kafka-integration.js');
      const integration = new KafkaIntegration({
        settings: { brokers: config.kafkaBrokers, ...config.kafka },
        companyTopics: () => registry.uids(),
        eventMode: (topic) => registry.eventMode(topic),
        outbox: createOutboxRepository(db.sql),
        timeline,
        databaseUp: () => db.sql`select 1`.then(() => true),
        constatInsurers: (id) => constats.insurers(id),
        aiServices: config.aiServices,
        logger,
        onPublished: (n) => metrics.eventsPublished.inc(n),
        onSend: () => metrics.kafkaSends.inc(),
        onPublishFailed: () => metrics.publishFailures.inc(),
        onStored: (event) => {
          metrics.eventsReceived.inc({ type: event.type });
          changes.constat(event.subject);
        },
        onDeadLetter: (reason) => metrics.deadLetters.inc({ reason }),
      });
      kafka = integration;
      registry.onChange(() => integration.companiesChanged());
      integration.start();
      cleanups.push(() => integration.close());
    }
    const webhooks = startWebhooks(config.webhooks, db.sql, metrics.registry, logger);
    cleanups.push(() => webhooks.close());
    const channels: DeliveryChannel[] = [webhooks.channel, ...(kafka ? [kafka] : [])];
    const outboxBacklog = createOutboxRepository(db.sql);
    metrics.trackOutbox(() => outboxBacklog.backlog());
    const attachments = new AttachmentService(
      media,
      createAttachmentsRepository(db.sql),
      config.media,
      logger.child({ component: 'media' }),
      {
        slotIssued: () => metrics.uploadSlots.inc(),
        fileChecked: (outcome) => metrics.attachmentChecks.inc({ outcome }),
        cleaned: (attachments, orphans) => {
          metrics.mediaCleaned.inc({ reason: 'attachment' }, attachments);
          metrics.mediaCleaned.inc({ reason: 'orphan' }, orphans);
        },
      },
    );
    const cleanup = setInterval(() => {
      attachments.cleanup().catch((err: unknown) => logger.warn({ err }, 'media cleanup failed'));
    }, config.media.cleanupIntervalMs);
    cleanup.unref();
    cleanups.push(async () => clearInterval(cleanup));
    const documents = createDocumentsRepository(db.sql);
    const reports = createReportService(
      { ...config.report, urlTtlSeconds: config.media.downloadTtlSeconds },
      {
        documents,
        constats,
        media,
        logger,
        insurerName: (uid) => registry.list().find((c) => c.uid === uid)?.name ?? uid,
        publicUrl: () => ownUrl,
        onRendered: (seconds, constatId) => {
          metrics.reportRenders.observe(seconds);
          changes.constat(constatId);
        },
        onFailed: () => metrics.reportFailures.inc(),
      },
    );
    cleanups.push(async () => {
      await reports.service.close();
      await reports.pool?.close();
    });
    metrics.trackReports(() => documents.pending());
    let ai: EmbeddedAi | undefined;
    if (!config.kafkaBrokers && config.ai.embedded) {
      ai = await startAi(config, db, logger, cleanups, {
        // The results take the path of `ai-results`: the same checks, the same timeline.
        deliver: async (event) => {
          const validator = (aiValidator ??= createEventValidator());
          const disposition = await decide(
            AI_RESULTS_TOPIC,
            { value: Buffer.from(JSON.stringify(event)), headers: {} },
            validator,
            (id) => constats.insurers(id),
            new Set(config.aiServices),
          );
          if (disposition.kind === 'store') {
            if (await storeEvent(timeline, AI_RESULTS_TOPIC, disposition.event)) {
              metrics.eventsReceived.inc({ type: event.type });
              changes.constat(event.subject);
            }
          } else if (disposition.kind === 'dead-letter') {
            metrics.deadLetters.inc({ reason: disposition.reason });
            logger.warn({ ...disposition, eventId: event.id }, 'embedded AI result refused');
          }
        },
        registry: metrics.registry,
        media,
      });
      const embedded = ai;
      readiness.push({ name: 'ai', check: () => embedded.ready() });
    }
    const finalizer = createFinalizer(constats, {
      committed: (constatId) => {
        for (const channel of channels) channel.wake();
        ai?.wake();
        reports.service.finalized(constatId);
      },
      attachments,
      grouped: (size) => metrics.finalizationGroups.observe(size),
    });
    // The live documents' durability follows the hub: the compactor stores what Redis holds;
    // without Redis, each document saves its own draft.
    const durability = compactor
      ? compaction(compactor)
      : draftSaves({ drafts, folder, offload, debounceMs: config.drafts.saveDebounceMs });
    // One observer for every session: its closures would otherwise be made per session, and
    // each costs about 380 bytes of heap (tsx keeps function names with defineProperty).
    const observer = metrics.syncObserver();
    const live = new LiveSessions(
      (session) => ({
        sessionId: session.id,
        formVersion: session.formVersion,
        expiresAt: session.expiresAt,
        finalizer,
        hub,
        drafts,
        durability,
        offload,
        logger,
        observer,
        maxDocumentBytes: config.limits.maxDocumentBytes,
        onChanged() {
          changes.session(session.id);
        },
      }),
      logger,
      { sleepAfterMs: config.documents.sleepAfterMs },
    );
    metrics.trackAsleep(() => live.asleep);
    cleanups.push(() => live.close());

    const sessions = new SessionService(store, drafts, config.sessions);
    sessions.onEnded((session, status) => live.use(session, (l) => l.end(status)));
    sessions.onChanged(changes.session);
    const signing = new SigningService(
      sessions,
      live,
      createDevicesRepository(db.sql),
      () => registry.uids(),
      logger,
      attachments,
    );
    const expiry = setInterval(() => {
      sessions.expireDue().catch((err: unknown) => logger.error({ err }, 'expiry sweep failed'));
    }, config.sessions.expirySweepMs);
    expiry.unref();
    cleanups.push(async () => clearInterval(expiry));
    const verifier = createTokenVerifier(config.auth, config.tokens);
    const insurerClients = createInsurerClientsRepository(db.sql);
    const app = createApp({
      verifier,
      yoga: createGraphQL(logger, config.graphql),
      services: {
        sessions,
        signing,
        registry,
        metrics,
        constats,
        timeline,
        documents,
        reports: reports.service,
        cursors: createCursorCodec(config.graphql.cursorSecret),
        pubsub,
        maxPageSize: config.graphql.maxPageSize,
        attachments,
        subscriptionBuffer: config.graphql.subscriptionBuffer,
        logger,
      },
      maxBodyBytes: config.graphql.maxBodyBytes,
      ...(config.media.store.kind === 'files'
        ? { media: { store: media, urlSecret: config.media.store.urlSecret } }
        : {}),
      metrics,
      readiness,
      features: {
        report: () =>
          reports.service.available
            ? 'available'
            : `unavailable: ${reports.service.unavailableReason}`,
        video: () =>
          ai?.features.video ??
          (config.kafkaBrokers
            ? 'in the AI service (constat ai)'
            : 'unavailable: AI_EMBEDDED=false'),
        ocr: () => ai?.ocrState() ?? 'unavailable: the AI service runs apart (constat ai)',
        // Not a readiness check: phones are served while Kafka is away (events wait in the outbox).
        kafka: () => kafka?.state ?? 'unavailable: KAFKA_BROKERS is not set',
      },
      verify: { constats, documents },
      publicUrl: config.publicUrl,
      metricsHere: config.metrics.port === undefined,
      metricsToken: config.metrics.token,
      logger,
      routes: [
        createWebAppRoutes({ logger }),
        createInsurerApiRoutes({
          auth: createInsurerAuth(insurerClients, config.insurerApi),
          clients: insurerClients,
          inbound: {
            validator: createEventValidator(),
            timeline,
            constatInsurers: (id) => constats.insurers(id),
            onStored: (event) => {
              metrics.eventsReceived.inc({ type: event.type });
              webhooks.metrics.inbound.inc({ outcome: 'accepted' });
              changes.constat(event.subject);
            },
            onRefused: (reason) => webhooks.metrics.inbound.inc({ outcome: reason }),
          },
          feed: createInsurerFeedRepository(db.sql),
          constats,
          attachments,
          cursors: createCursorCodec(config.graphql.cursorSecret),
          publicUrl: config.publicUrl,
          maxBodyBytes: config.insurerApi.maxBodyBytes,
          maxPageSize: config.graphql.maxPageSize,
          logger,
        }),
        ...(config.devMode && config.auth.kind === 'hs256'
          ? [createDevTokenRoutes(config.auth.secret)]
          : []),
      ],
    });
    const endpoint = createSyncEndpoint({
      verifier,
      sessions,
      live,
      limits: config.limits,
      metrics,
      logger,
    });

    if (config.metrics.port !== undefined) {
      const metricsListener = await listen(createMetricsApp(metrics, config.metrics.token).fetch, {
        port: config.metrics.port,
        host: config.host,
      });
      cleanups.push(() => metricsListener.close());
    }
    const listener = await listen(app.fetch, { port: config.port, host: config.host });
    const { server } = listener;
    // Closing the endpoint (devices) comes before saving the documents: pushed last, runs first.
    cleanups.push(() => listener.close());
    cleanups.push(() => endpoint.close());
    server.on('upgrade', (req, socket, head) => {
      try {
        if (!endpoint.handleUpgrade(req, socket, head)) {
          socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        }
      } catch (err) {
        // One bad request must never take the process down.
        logger.error({ err }, 'websocket upgrade failed');
        socket.destroy();
      }
    });

    const { port, url } = listener;
    if (!ownUrl) {
      ownUrl = url;
      if (media.kind === 'files' && !config.host.startsWith('127.')) {
        // GraphQL answers use the caller's origin; the finalized event has no caller.
        logger.warn(
          { downloadBase: ownUrl },
          'MEDIA_STORE=files without PUBLIC_URL: download URLs in finalized events name this instance',
        );
      }
    }
    if (reports.service.available) {
      reports.service.start();
      // Launched now so the first report does not wait for the browser.
      reports.pool
        ?.warm()
        .catch((err: unknown) =>
          logger.warn(
            { err: (err as Error).message },
            'report browser failed to start; renders will retry',
          ),
        );
    } else {
      logger.warn(reports.service.unavailableReason);
    }
    if (config.auth.kind === 'hs256' && config.auth.isDevelopmentSecret) {
      logger.warn(
        'development mode: tokens signed with the public built-in secret are accepted; listening on loopback only',
      );
    }
    logger.info(
      {
        port,
        database: db.kind,
        hub: config.redisUrl ? 'redis' : 'in-process',
        media: media.kind,
        kafka: config.kafkaBrokers
          ? config.kafkaBrokers.join(',')
          : 'none (events wait in the outbox)',
        ai: ai ? 'embedded' : config.kafkaBrokers ? 'constat ai (separate service)' : 'off',
      },
      'constat server listening',
    );
    return { url, port, metrics, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
