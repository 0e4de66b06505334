/**
 * The one configuration loader. Everything the process can be told comes from the environment
 * (12-factor); an invalid value stops start-up with one line naming the variable, so an operator
 * never has to guess which setting was wrong.
 */
import path from 'node:path';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { MediaStoreConfig } from '../media/create-media-store.js';
import { DEFAULT_RETRY_SCHEDULE_MS, parseSchedule } from '../integrations/webhook-retry.js';
import type { OcrSettings } from '../ai/ocr/reader.js';

export interface Config {
  port: number;
  host: string;
  /**
   * Asked for explicitly (`CONSTAT_DEV=1`, `constat serve --dev`, `npm start`): the built-in
   * development secret may be used, and the server then listens on loopback only.
   */
  devMode: boolean;
  /** Absent: embedded PGlite under `dataDir`. */
  databaseUrl: string | undefined;
  /** Absent: the in-process hub (one instance; sessions are in the database either way). */
  redisUrl: string | undefined;
  /** Prefix of every Redis key, so several deployments can share one Redis. */
  redisKeyPrefix: string;
  /** Absent: events wait in the outbox until a broker is configured. */
  kafkaBrokers: string[] | undefined;
  kafka: KafkaOptions;
  dataDir: string;
  /**
   * A dump of a freshly initialised PGlite cluster (`npm test` keeps one in `.cache/`): an
   * embedded database created empty starts from it instead of running initdb (a second, not five).
   */
  pgliteTemplate: string | undefined;
  logLevel: string;
  auth: AuthConfig;
  tokens: TokenPolicy;
  /** Base URL devices use to reach this server; derived from each request when absent. */
  publicUrl: string | undefined;
  metrics: MetricsSettings;
  /** CloudEvents `source` values accepted on `ai-results` (registered AI services). */
  aiServices: string[];
  limits: Limits;
  sessions: SessionSettings;
  drafts: { saveDebounceMs: number };
  /** A live document idle this long sleeps (encoded, devices still connected); 0: never. */
  documents: { sleepAfterMs: number };
  hub: HubSettings;
  graphql: GraphQLLimits;
  media: MediaSettings;
  report: ReportSettings;
  ai: AiConfig;
  webhooks: WebhookConfig;
  insurerApi: InsurerApiConfig;
}

/** The webhook delivery channel (docs/integration.md). */
export interface WebhookConfig {
  retryScheduleMs: number[];
  timeoutMs: number;
  concurrencyPerCompany: number;
  disableAfterMs: number;
  maxRetryAfterMs: number;
  pollMs: number;
  /** Extra CA certificates (PEM) trusted for receivers, beside Node's bundled roots. */
  caFile: string | undefined;
}

/** The insurers' REST API: access tokens issued for client assertions. */
export interface InsurerApiConfig {
  /** Signs the access tokens this server issues (HS256); shared by every instance. */
  tokenSecret: string;
  tokenTtlSeconds: number;
  maxBodyBytes: number;
}

export interface ReportSettings {
  /** CHROMIUM_PATH as given; absent: Debian's chromium when installed (report/chromium.ts). */
  chromiumPath: string | undefined;
  /** PDFs printed at once by this instance. */
  concurrency: number;
  /** A render taking longer fails and is retried later. */
  timeoutMs: number;
  /** How often queued renders are looked for when not woken by a finalization. */
  pollMs: number;
}

export interface MediaSettings {
  store: MediaStoreConfig;
  /** Largest attachment accepted (bytes). */
  maxBytes: number;
  /** Attachments one party may add to one constat. */
  maxPerParty: number;
  /** Lifetime of an upload slot, and of the download URLs handed out. */
  uploadTtlSeconds: number;
  downloadTtlSeconds: number;
  /** Uploads never referenced, and those of sessions that ended unfinalized, go after this. */
  retentionMs: number;
  cleanupIntervalMs: number;
}

/** The AI service (`constat ai`, or embedded in `constat serve` when there is no broker). */
export interface AiConfig {
  /** Its own PostgreSQL; absent: embedded (schema `ai` of the server's database, or PGlite). */
  databaseUrl: string | undefined;
  /** `constat ai` serves /healthz, /readyz and /metrics here. */
  port: number;
  consumerGroup: string;
  /** Without a broker, `constat serve` runs the pipeline in process, fed from the outbox. */
  embedded: boolean;
  rulesFile: string | undefined;
  modelFile: string | undefined;
  retentionDays: number;
  /** The reconstruction video function (ai/video/). */
  video: {
    enabled: boolean;
    /** An ffmpeg to use; absent: Debian's on the PATH, else the npm-shipped build. */
    ffmpeg?: string;
    /** Videos rendered at once (each a child process and an ffmpeg). */
    concurrency: number;
    timeoutMs: number;
    /** Resident memory of one render (renderer process and ffmpeg together). */
    maxMemoryMb: number;
  };
  /** Reading the drivers' papers (ai/ocr/). */
  ocr: OcrSettings;
}

export interface GraphQLLimits {
  maxDepth: number;
  maxCost: number;
  maxAliases: number;
  maxTokens: number;
  maxBodyBytes: number;
  maxPageSize: number;
  /** A subscriber this many changes behind (it stopped reading) is cut off. */
  subscriptionBuffer: number;
  introspection: boolean;
  /** Seals page cursors; every instance of a deployment must share it. */
  cursorSecret: string;
}

/** What a valid token must also satisfy, whatever key verifies it. */
export interface TokenPolicy {
  /** Required `iss` / `aud` when set. */
  issuer: string | undefined;
  audience: string | undefined;
  /** A token issued (`iat`) longer ago than this is refused, whatever its `exp`. */
  maxTokenAgeMs: number;
}

/** Where `/metrics` is served: a port of its own, and/or behind a bearer token. */
export interface MetricsSettings {
  port: number | undefined;
  token: string | undefined;
}

export interface KafkaOptions {
  clientId: string;
  consumerGroup: string;
  /** Partitions and replication factor of the topics the server creates. */
  partitions: number;
  replicationFactor: number;
  /** How often the outbox relay looks for events to publish. */
  outboxPollMs: number;
  /** How often the company registry is re-read (new companies get their topics). */
  registryRefreshMs: number;
}

export interface HubSettings {
  /** How soon after an update its session's stream is merged into the draft (Redis hub). */
  compactionIntervalMs: number;
  /** How long merged stream entries stay readable before they are trimmed. */
  minMessageLifetimeMs: number;
  /** Updates read per stream read. */
  readCount: number;
}

export type AuthConfig =
  | { kind: 'hs256'; secret: string; isDevelopmentSecret: boolean }
  | { kind: 'public-key'; algorithm: 'ES256' | 'RS256'; publicKeyPem: string }
  | { kind: 'jwks'; url: string };

export interface Limits {
  /** Largest websocket frame accepted (bytes); larger closes with 4413. */
  maxFrameBytes: number;
  /** Largest encoded document a session may grow to (bytes); beyond closes with 4413. */
  maxDocumentBytes: number;
  /** Sustained messages per second per connection, and the burst allowed above it. */
  messagesPerSecond: number;
  messageBurst: number;
  /** A connection that sends nothing for this long is closed (stock clients send awareness every 15 s). */
  idleTimeoutMs: number;
  /** Bytes queued towards one device before it is considered unable to keep up. */
  maxBufferedBytes: number;
  /** Open sockets of one device in one session, on one instance; more are refused (1013). */
  maxSocketsPerDevice: number;
}

export interface SessionSettings {
  /** A session that is not finalized expires after this long. */
  ttlMs: number;
  joinCodeTtlMs: number;
  /** Failed join attempts allowed per user, and in total, per window. */
  joinFailuresPerUser: number;
  joinFailuresGlobal: number;
  joinThrottleWindowMs: number;
  /** Sessions one user may have opened that still wait for party B. */
  maxWaitingPerUser: number;
  /** How often each instance looks for sessions past their expiry. */
  expirySweepMs: number;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** Development secret used when no verification key is configured; never accepted in production. */
export const DEVELOPMENT_JWT_SECRET = 'constat-development-secret-do-not-use-in-production';

/** The functions of the AI service (`constat ai`, ai/functions.ts); AI_SERVICES names others. */
export const DEFAULT_AI_SERVICES = [
  'constat-ai-fraud',
  'constat-ai-cost',
  'constat-ai-ocr',
  'constat-ai-video',
];

export function loadConfig(env: Env = process.env): Config {
  const production = env.NODE_ENV === 'production';
  const devMode = flag(env, 'CONSTAT_DEV', false);
  if (devMode && production) {
    throw new ConfigError('CONSTAT_DEV', 'development mode cannot run with NODE_ENV=production');
  }
  const authConfig = auth(env, production, devMode);
  const port = integer(env, 'PORT', 8080, 0, 65535);
  return {
    port,
    host: host(env, authConfig),
    devMode,
    ...loadStorageConfig(env),
    redisUrl: url(env, 'REDIS_URL', ['redis:', 'rediss:']),
    redisKeyPrefix: keyPrefix(env),
    ...loadKafkaConfig(env),
    auth: authConfig,
    tokens: tokenPolicy(env, production),
    publicUrl: publicUrl(env, production),
    metrics: metricsSettings(env, port),
    aiServices: list(env, 'AI_SERVICES', DEFAULT_AI_SERVICES),
    limits: {
      maxFrameBytes: integer(env, 'MAX_FRAME_BYTES', 1024 * 1024, 1024, 64 * 1024 * 1024),
      maxDocumentBytes: integer(
        env,
        'MAX_DOCUMENT_BYTES',
        2 * 1024 * 1024,
        1024,
        256 * 1024 * 1024,
      ),
      messagesPerSecond: integer(env, 'MAX_MESSAGES_PER_SECOND', 100, 1, 100_000),
      messageBurst: integer(env, 'MAX_MESSAGE_BURST', 400, 1, 1_000_000),
      idleTimeoutMs: integer(env, 'IDLE_TIMEOUT_MS', 60_000, 1_000, 24 * 3600_000),
      maxBufferedBytes: integer(
        env,
        'MAX_BUFFERED_BYTES',
        4 * 1024 * 1024,
        1024,
        1024 * 1024 * 1024,
      ),
      maxSocketsPerDevice: integer(env, 'MAX_SOCKETS_PER_DEVICE', 4, 1, 1_000),
    },
    sessions: sessionSettings(env),
    drafts: {
      saveDebounceMs: integer(env, 'DRAFT_SAVE_DEBOUNCE_MS', 2_000, 0, 3600_000),
    },
    documents: {
      sleepAfterMs: integer(env, 'DOCUMENT_SLEEP_AFTER_MS', 30_000, 0, 24 * 3600_000),
    },
    graphql: {
      maxDepth: integer(env, 'GRAPHQL_MAX_DEPTH', 10, 1, 100),
      maxCost: integer(env, 'GRAPHQL_MAX_COST', 6_000, 10, 10_000_000),
      maxAliases: integer(env, 'GRAPHQL_MAX_ALIASES', 15, 0, 1_000),
      maxTokens: integer(env, 'GRAPHQL_MAX_TOKENS', 2_000, 10, 100_000),
      maxBodyBytes: integer(env, 'GRAPHQL_MAX_BODY_BYTES', 64 * 1024, 1_024, 16 * 1024 * 1024),
      maxPageSize: integer(env, 'GRAPHQL_MAX_PAGE_SIZE', 50, 1, 1_000),
      subscriptionBuffer: integer(env, 'GRAPHQL_SUBSCRIPTION_BUFFER', 100, 1, 100_000),
      introspection: flag(env, 'GRAPHQL_INTROSPECTION', !production),
      cursorSecret: cursorSecret(env, authConfig),
    },
    media: media(env),
    report: {
      chromiumPath: env.CHROMIUM_PATH || undefined,
      concurrency: integer(env, 'REPORT_CONCURRENCY', 2, 1, 32),
      timeoutMs: integer(env, 'REPORT_TIMEOUT_MS', 30_000, 1_000, 600_000),
      pollMs: integer(env, 'REPORT_POLL_MS', 2_000, 10, 3600_000),
    },
    ai: aiSettings(env),
    webhooks: webhookSettings(env),
    insurerApi: {
      tokenSecret: insurerTokenSecret(env, authConfig),
      tokenTtlSeconds: integer(env, 'INSURER_TOKEN_TTL_S', 300, 30, 3600),
      maxBodyBytes: integer(env, 'INSURER_MAX_BODY_BYTES', 256 * 1024, 1024, 16 * 1024 * 1024),
    },
    hub: {
      compactionIntervalMs: integer(env, 'COMPACTION_INTERVAL_MS', 5_000, 10, 3600_000),
      minMessageLifetimeMs: integer(env, 'HUB_MIN_MESSAGE_LIFETIME_MS', 60_000, 0, 24 * 3600_000),
      readCount: integer(env, 'HUB_READ_COUNT', 1_000, 1, 100_000),
    },
  };
}

function media(env: Env): MediaSettings {
  const kind = oneOf(env, 'MEDIA_STORE', ['files', 's3'] as const, 'files');
  let store: MediaStoreConfig;
  if (kind === 's3') {
    const bucket = env.S3_BUCKET ?? '';
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      throw new ConfigError(
        'S3_BUCKET',
        `expected a bucket name (3–63 of a–z 0–9 . -), got "${bucket}"`,
      );
    }
    const endpoint = url(env, 'S3_ENDPOINT', ['http:', 'https:']);
    const accessKeyId = env.S3_ACCESS_KEY_ID || undefined;
    const secretAccessKey = env.S3_SECRET_ACCESS_KEY || undefined;
    if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) {
      throw new ConfigError(
        accessKeyId ? 'S3_SECRET_ACCESS_KEY' : 'S3_ACCESS_KEY_ID',
        'set both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither (the AWS default chain)',
      );
    }
    const region = env.S3_REGION || 'us-east-1';
    if (!/^[a-z0-9-]{2,32}$/.test(region)) {
      throw new ConfigError(
        'S3_REGION',
        `expected a region name such as eu-west-3, got "${region}"`,
      );
    }
    store = {
      kind: 's3',
      endpoint,
      bucket,
      region,
      accessKeyId,
      secretAccessKey,
      // Self-hosted services mostly want path-style; AWS itself prefers virtual hosts.
      forcePathStyle: flag(env, 'S3_FORCE_PATH_STYLE', endpoint !== undefined),
    };
  } else {
    store = {
      kind: 'files',
      // Every instance must see the same folder: a shared volume when there are several.
      root: path.resolve(env.MEDIA_DIR || path.join(env.DATA_DIR ?? '.data', 'media')),
      urlSecret: mediaSecret(env),
    };
  }
  return {
    store,
    maxBytes: integer(env, 'MEDIA_MAX_BYTES', 15 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    maxPerParty: integer(env, 'MEDIA_MAX_PER_PARTY', 12, 0, 1_000),
    uploadTtlSeconds: integer(env, 'MEDIA_UPLOAD_TTL_S', 900, 10, 7 * 24 * 3600),
    // S3 presigned URLs live at most 7 days.
    downloadTtlSeconds: integer(env, 'MEDIA_DOWNLOAD_TTL_S', 7 * 24 * 3600, 10, 7 * 24 * 3600),
    retentionMs: integer(env, 'MEDIA_RETENTION_MS', 7 * 24 * 3600_000, 1_000, 365 * 24 * 3600_000),
    cleanupIntervalMs: integer(env, 'MEDIA_CLEANUP_INTERVAL_MS', 3600_000, 100, 24 * 3600_000),
  };
}

/** MEDIA_URL_SECRET, or one derived from the token verification key every instance shares. */
function mediaSecret(env: Env): string {
  const explicit = env.MEDIA_URL_SECRET;
  if (explicit !== undefined && explicit !== '') {
    if (explicit.length < 32)
      throw new ConfigError('MEDIA_URL_SECRET', 'must be at least 32 characters');
    return explicit;
  }
  const material =
    env.AUTH_JWT_SECRET || env.AUTH_JWT_PUBLIC_KEY || env.AUTH_JWKS_URL || DEVELOPMENT_JWT_SECRET;
  return createHash('sha256').update(`constat-media:${material}`).digest('hex');
}

/**
 * The part of the configuration the tools that serve nothing need (`constat migrate`,
 * `constat insurer`): they must run without a token verification key.
 */
function aiSettings(env: Env): AiConfig {
  return {
    databaseUrl: url(env, 'AI_DATABASE_URL', ['postgres:', 'postgresql:']),
    port: integer(env, 'AI_PORT', 8091, 0, 65535),
    consumerGroup: env.AI_CONSUMER_GROUP || 'constat-ai',
    embedded: flag(env, 'AI_EMBEDDED', true),
    rulesFile: file(env, 'AI_FRAUD_RULES'),
    modelFile: file(env, 'AI_FRAUD_MODEL'),
    retentionDays: integer(env, 'AI_FEATURE_RETENTION_DAYS', 1_095, 1, 36_500),
    video: {
      enabled: flag(env, 'AI_VIDEO', true),
      ...(file(env, 'AI_VIDEO_FFMPEG') ? { ffmpeg: file(env, 'AI_VIDEO_FFMPEG')! } : {}),
      concurrency: integer(env, 'AI_VIDEO_CONCURRENCY', 1, 1, 16),
      timeoutMs: integer(env, 'AI_VIDEO_TIMEOUT_MS', 120_000, 5_000, 3600_000),
      maxMemoryMb: integer(env, 'AI_VIDEO_MAX_MEMORY_MB', 768, 128, 16_384),
    },
    ocr: ocrSettings(env),
  };
}

function ocrSettings(env: Env): OcrSettings {
  const engine = oneOf(env, 'OCR_ENGINE', ['auto', 'native', 'wasm', 'off'] as const, 'auto');
  return {
    enabled: engine !== 'off',
    engine: engine === 'off' ? 'auto' : engine,
    tesseractPath: env.OCR_TESSERACT_PATH || undefined,
    concurrency: integer(env, 'OCR_CONCURRENCY', 1, 1, 64),
    timeoutMs: integer(env, 'OCR_TIMEOUT_MS', 60_000, 1_000, 3600_000),
    maxBytes: integer(env, 'OCR_MAX_BYTES', 15 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    maxPixels: integer(env, 'OCR_MAX_PIXELS', 40_000_000, 10_000, 1_000_000_000),
    // The model files unpacked from node_modules (nothing is downloaded).
    cacheDir: path.join(path.resolve(env.DATA_DIR ?? '.data'), 'ai', 'ocr'),
  };
}

/**
 * What `constat ai` needs: its database, Kafka and its own settings. It verifies no tokens, so
 * it runs without a verification key.
 */
export function loadAiServiceConfig(
  env: Env = process.env,
): Pick<
  Config,
  | 'databaseUrl'
  | 'dataDir'
  | 'pgliteTemplate'
  | 'logLevel'
  | 'kafkaBrokers'
  | 'kafka'
  | 'ai'
  | 'host'
  | 'media'
> {
  return {
    ...loadStorageConfig(env),
    ...loadKafkaConfig(env),
    ai: aiSettings(env),
    // The same store as core: the AI service reads the photos and stores what it makes.
    media: media(env),
    host: env.HOST || '0.0.0.0',
  };
}

export function loadStorageConfig(
  env: Env = process.env,
): Pick<Config, 'databaseUrl' | 'dataDir' | 'pgliteTemplate' | 'logLevel'> {
  return {
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    dataDir: path.resolve(env.DATA_DIR ?? '.data'),
    pgliteTemplate: env.PGLITE_TEMPLATE ? path.resolve(env.PGLITE_TEMPLATE) : undefined,
    logLevel: oneOf(
      env,
      'LOG_LEVEL',
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      'info',
    ),
  };
}

export function loadKafkaConfig(env: Env = process.env): Pick<Config, 'kafkaBrokers' | 'kafka'> {
  return {
    kafkaBrokers: brokers(env),
    kafka: {
      clientId: env.KAFKA_CLIENT_ID || 'constat',
      consumerGroup: env.KAFKA_CONSUMER_GROUP || 'constat-core',
      partitions: integer(env, 'KAFKA_TOPIC_PARTITIONS', 3, 1, 1_000),
      replicationFactor: integer(env, 'KAFKA_REPLICATION_FACTOR', 1, 1, 10),
      outboxPollMs: integer(env, 'OUTBOX_POLL_MS', 200, 10, 60_000),
      registryRefreshMs: integer(env, 'COMPANY_REFRESH_MS', 60_000, 100, 24 * 3600_000),
    },
  };
}

function sessionSettings(env: Env): SessionSettings {
  const settings: SessionSettings = {
    ttlMs: integer(env, 'SESSION_TTL_MS', 24 * 3600_000, 1_000, 30 * 24 * 3600_000),
    joinCodeTtlMs: integer(env, 'JOIN_CODE_TTL_MS', 10 * 60_000, 1_000, 24 * 3600_000),
    joinFailuresPerUser: integer(env, 'JOIN_FAILURES_PER_USER', 10, 1, 1_000_000),
    joinFailuresGlobal: integer(env, 'JOIN_FAILURES_GLOBAL', 300, 1, 100_000_000),
    expirySweepMs: integer(env, 'EXPIRY_SWEEP_MS', 60_000, 100, 24 * 3600_000),
    maxWaitingPerUser: integer(env, 'MAX_WAITING_SESSIONS_PER_USER', 3, 1, 10_000),
    joinThrottleWindowMs: integer(
      env,
      'JOIN_THROTTLE_WINDOW_MS',
      10 * 60_000,
      1_000,
      24 * 3600_000,
    ),
  };
  // One user must never be able to use up the global guard alone.
  if (settings.joinFailuresGlobal <= settings.joinFailuresPerUser) {
    throw new ConfigError(
      'JOIN_FAILURES_GLOBAL',
      `must be greater than JOIN_FAILURES_PER_USER (${settings.joinFailuresPerUser})`,
    );
  }
  return settings;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(name, `expected an integer, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) {
    throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  }
  return value;
}

/**
 * CURSOR_SECRET, or one derived from the HS256 secret every instance shares. A public key or a
 * JWKS URL is public: a cursor sealed with it could be forged, so those modes need their own.
 */
function cursorSecret(env: Env, authConfig: AuthConfig): string {
  return derivedSecret(env, authConfig, 'CURSOR_SECRET', 'constat-cursor');
}

/**
 * A server-side secret shared by every instance: `name` when set, else derived (`purpose`) from
 * the HS256 secret; a public key or JWKS URL is public, so those modes need it set.
 */
function derivedSecret(env: Env, authConfig: AuthConfig, name: string, purpose: string): string {
  const explicit = env[name];
  if (explicit !== undefined && explicit !== '') {
    if (explicit.length < 32) throw new ConfigError(name, 'must be at least 32 characters');
    return createHash('sha256').update(`${purpose}:${explicit}`).digest('hex');
  }
  if (authConfig.kind !== 'hs256') {
    throw new ConfigError(
      name,
      `required with ${authConfig.kind === 'jwks' ? 'AUTH_JWKS_URL' : 'AUTH_JWT_PUBLIC_KEY'} (at least 32 characters, the same on every instance)`,
    );
  }
  return createHash('sha256').update(`${purpose}:${authConfig.secret}`).digest('hex');
}

/**
 * INSURER_TOKEN_SECRET, or one derived from the cursor secret (itself CURSOR_SECRET or derived
 * from the HS256 secret): every instance has it, and a deployment needs no new variable.
 */
function insurerTokenSecret(env: Env, authConfig: AuthConfig): string {
  if (env.INSURER_TOKEN_SECRET) {
    return derivedSecret(env, authConfig, 'INSURER_TOKEN_SECRET', 'constat-insurer-token');
  }
  return createHash('sha256')
    .update(`constat-insurer-token:${cursorSecret(env, authConfig)}`)
    .digest('hex');
}

function webhookSettings(env: Env): WebhookConfig {
  let retryScheduleMs = [...DEFAULT_RETRY_SCHEDULE_MS];
  const schedule = env.WEBHOOK_RETRY_SCHEDULE;
  if (schedule !== undefined && schedule.trim() !== '') {
    try {
      retryScheduleMs = parseSchedule(schedule);
    } catch (err) {
      throw new ConfigError('WEBHOOK_RETRY_SCHEDULE', (err as Error).message);
    }
    if (retryScheduleMs.length === 0 || retryScheduleMs.length > 50)
      throw new ConfigError('WEBHOOK_RETRY_SCHEDULE', 'give 1 to 50 delays');
  }
  return {
    retryScheduleMs,
    timeoutMs: integer(env, 'WEBHOOK_TIMEOUT_MS', 15_000, 100, 120_000),
    concurrencyPerCompany: integer(env, 'WEBHOOK_CONCURRENCY', 4, 1, 256),
    disableAfterMs: integer(
      env,
      'WEBHOOK_DISABLE_AFTER_MS',
      5 * 24 * 3600_000,
      1_000,
      365 * 24 * 3600_000,
    ),
    maxRetryAfterMs: integer(env, 'WEBHOOK_MAX_RETRY_AFTER_MS', 6 * 3600_000, 0, 48 * 3600_000),
    pollMs: integer(env, 'WEBHOOK_POLL_MS', 500, 10, 60_000),
    caFile: file(env, 'WEBHOOK_CA_FILE'),
  };
}

/** Development mode on the built-in secret listens on loopback only: anyone can mint its tokens. */
function host(env: Env, authConfig: AuthConfig): string {
  const builtIn = authConfig.kind === 'hs256' && authConfig.isDevelopmentSecret;
  const raw = env.HOST;
  if (raw === undefined || raw === '') return builtIn ? '127.0.0.1' : '0.0.0.0';
  if (builtIn && !isLoopback(raw)) {
    throw new ConfigError(
      'HOST',
      `the built-in development secret listens on loopback only, got "${raw}" (set AUTH_JWT_SECRET to listen elsewhere)`,
    );
  }
  return raw;
}

function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

function publicUrl(env: Env, production: boolean): string | undefined {
  const value = url(env, 'PUBLIC_URL', ['http:', 'https:']);
  // Without it, syncUrl would be built from the request's Host header, which the client chooses.
  if (!value && production) {
    throw new ConfigError(
      'PUBLIC_URL',
      'required with NODE_ENV=production (e.g. https://constat.example)',
    );
  }
  return value;
}

function tokenPolicy(env: Env, production: boolean): TokenPolicy {
  const issuer = env.AUTH_JWT_ISSUER || undefined;
  const audience = env.AUTH_JWT_AUDIENCE || undefined;
  if (production && !issuer) {
    throw new ConfigError(
      'AUTH_JWT_ISSUER',
      'required with NODE_ENV=production (the expected "iss")',
    );
  }
  if (production && !audience) {
    throw new ConfigError(
      'AUTH_JWT_AUDIENCE',
      'required with NODE_ENV=production (the expected "aud")',
    );
  }
  return {
    issuer,
    audience,
    maxTokenAgeMs: integer(env, 'AUTH_MAX_TOKEN_AGE_MS', 24 * 3600_000, 1_000, 30 * 24 * 3600_000),
  };
}

function metricsSettings(env: Env, port: number): MetricsSettings {
  const metricsPort = env.METRICS_PORT ? integer(env, 'METRICS_PORT', 0, 1, 65535) : undefined;
  if (metricsPort !== undefined && metricsPort === port) {
    throw new ConfigError('METRICS_PORT', `must differ from PORT (${port})`);
  }
  const token = env.METRICS_TOKEN || undefined;
  if (token !== undefined && token.length < 16) {
    throw new ConfigError('METRICS_TOKEN', 'must be at least 16 characters');
  }
  return { port: metricsPort, token };
}

function list(env: Env, name: string, fallback: string[]): string[] {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const values = raw.split(',').map((v) => v.trim());
  for (const value of values) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$/.test(value)) {
      throw new ConfigError(name, `expected a comma-separated list of names, got "${value}"`);
    }
  }
  return values;
}

function file(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const resolved = path.resolve(raw);
  if (!existsSync(resolved)) throw new ConfigError(name, `no such file: ${resolved}`);
  return resolved;
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
  throw new ConfigError(name, `expected true or false, got "${raw}"`);
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, `not a valid URL`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `expected a ${protocols.join(' or ')} URL, got ${parsed.protocol}`);
  }
  return raw;
}

function oneOf<T extends string>(env: Env, name: string, values: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(values as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `expected one of ${values.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

function keyPrefix(env: Env): string {
  const raw = env.REDIS_KEY_PREFIX;
  if (raw === undefined || raw === '') return 'constat:v1:';
  if (!/^[A-Za-z0-9:._-]{1,64}$/.test(raw)) {
    throw new ConfigError('REDIS_KEY_PREFIX', 'use 1–64 of A–Z a–z 0–9 : . _ -');
  }
  return raw;
}

function brokers(env: Env): string[] | undefined {
  const raw = env.KAFKA_BROKERS;
  if (raw === undefined || raw.trim() === '') return undefined;
  const list = raw.split(',').map((b) => b.trim());
  for (const broker of list) {
    if (!/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/.test(broker)) {
      throw new ConfigError('KAFKA_BROKERS', `expected host:port[,host:port…], got "${broker}"`);
    }
  }
  return list;
}

function auth(env: Env, production: boolean, devMode: boolean): AuthConfig {
  if (env.AUTH_JWKS_URL) {
    return { kind: 'jwks', url: jwksUrl(env, devMode) };
  }
  if (env.AUTH_JWT_PUBLIC_KEY) {
    const algorithm = oneOf(env, 'AUTH_JWT_ALGORITHM', ['ES256', 'RS256'] as const, 'ES256');
    const pem = env.AUTH_JWT_PUBLIC_KEY.replace(/\\n/g, '\n');
    if (!pem.includes('BEGIN PUBLIC KEY')) {
      throw new ConfigError('AUTH_JWT_PUBLIC_KEY', 'expected a PEM "PUBLIC KEY" block');
    }
    return { kind: 'public-key', algorithm, publicKeyPem: pem };
  }
  const secret = env.AUTH_JWT_SECRET;
  if (secret !== undefined && secret !== '') {
    if (secret.length < 32)
      throw new ConfigError('AUTH_JWT_SECRET', 'must be at least 32 characters');
    if (secret === DEVELOPMENT_JWT_SECRET && !devMode) {
      throw new ConfigError(
        'AUTH_JWT_SECRET',
        'the built-in development secret is public: set your own',
      );
    }
    return { kind: 'hs256', secret, isDevelopmentSecret: secret === DEVELOPMENT_JWT_SECRET };
  }
  // The built-in secret is public: anyone could mint any user or insurer role with it. It is
  // used only when development mode was asked for by name, never because something is unset.
  if (!devMode) {
    throw new ConfigError(
      'AUTH_JWT_SECRET',
      `no verification key configured (set AUTH_JWKS_URL, AUTH_JWT_PUBLIC_KEY or AUTH_JWT_SECRET${production ? '' : ', or CONSTAT_DEV=1 for development'})`,
    );
  }
  return { kind: 'hs256', secret: DEVELOPMENT_JWT_SECRET, isDevelopmentSecret: true };
}

/** https only; plain http to a loopback host in development mode (a local identity provider). */
function jwksUrl(env: Env, devMode: boolean): string {
  const value = url(env, 'AUTH_JWKS_URL', ['https:', 'http:']) as string;
  const parsed = new URL(value);
  if (parsed.protocol === 'http:' && !(devMode && isLoopback(parsed.hostname))) {
    throw new ConfigError(
      'AUTH_JWKS_URL',
      'must be https (plain http only to a loopback host with CONSTAT_DEV=1)',
    );
  }
  return value;
}

/**
 * The HS256 secret `constat token` signs with: AUTH_JWT_SECRET, else the built-in development
 * secret (minting with it is harmless: only a development-mode server accepts its tokens).
 */
export function tokenSigningSecret(env: Env = process.env): string {
  if (env.AUTH_JWKS_URL || env.AUTH_JWT_PUBLIC_KEY) {
    throw new ConfigError(
      env.AUTH_JWKS_URL ? 'AUTH_JWKS_URL' : 'AUTH_JWT_PUBLIC_KEY',
      'tokens are issued by your identity provider in this mode; `constat token` mints HS256 only',
    );
  }
  const secret = env.AUTH_JWT_SECRET;
  if (secret === undefined || secret === '') return DEVELOPMENT_JWT_SECRET;
  if (secret.length < 32)
    throw new ConfigError('AUTH_JWT_SECRET', 'must be at least 32 characters');
  return secret;
}
