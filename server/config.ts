/**
 * The one configuration loader. Everything the process can be told comes from the environment
 * (12-factor); an invalid value stops start-up with one line naming the variable, so an operator
 * never has to guess which setting was wrong.
 */
import path from 'node:path';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';

export interface Config {
  port: number;
  host: string;
  /** Absent: embedded PGlite under `dataDir`. */
  databaseUrl: string | undefined;
  /** Absent: in-process hub and session store (single instance). */
  redisUrl: string | undefined;
  /** Prefix of every Redis key, so several deployments can share one Redis. */
  redisKeyPrefix: string;
  /** Absent: events wait in the outbox until a broker is configured. */
  kafkaBrokers: string[] | undefined;
  kafka: KafkaOptions;
  dataDir: string;
  logLevel: string;
  auth: AuthConfig;
  /** Base URL devices use to reach this server; derived from each request when absent. */
  publicUrl: string | undefined;
  limits: Limits;
  sessions: SessionSettings;
  drafts: { saveDebounceMs: number };
  /** A live document idle this long sleeps (encoded, devices still connected); 0: never. */
  documents: { sleepAfterMs: number };
  hub: HubSettings;
  graphql: GraphQLLimits;
  ai: AiConfig;
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
}

export interface SessionSettings {
  /** A session that is not finalized expires after this long. */
  ttlMs: number;
  joinCodeTtlMs: number;
  /** Failed join attempts allowed per user, and in total, per window. */
  joinFailuresPerUser: number;
  joinFailuresGlobal: number;
  joinThrottleWindowMs: number;
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

export function loadConfig(env: Env = process.env): Config {
  const production = env.NODE_ENV === 'production';
  return {
    port: integer(env, 'PORT', 8080, 0, 65535),
    host: env.HOST ?? '0.0.0.0',
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    redisUrl: url(env, 'REDIS_URL', ['redis:', 'rediss:']),
    redisKeyPrefix: keyPrefix(env),
    kafkaBrokers: brokers(env),
    kafka: {
      clientId: env.KAFKA_CLIENT_ID || 'constat',
      consumerGroup: env.KAFKA_CONSUMER_GROUP || 'constat-core',
      partitions: integer(env, 'KAFKA_TOPIC_PARTITIONS', 3, 1, 1_000),
      replicationFactor: integer(env, 'KAFKA_REPLICATION_FACTOR', 1, 1, 10),
      outboxPollMs: integer(env, 'OUTBOX_POLL_MS', 200, 10, 60_000),
      registryRefreshMs: integer(env, 'COMPANY_REFRESH_MS', 60_000, 100, 24 * 3600_000),
    },
    dataDir: path.resolve(env.DATA_DIR ?? '.data'),
    logLevel: oneOf(
      env,
      'LOG_LEVEL',
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      'info',
    ),
    auth: auth(env, production),
    publicUrl: url(env, 'PUBLIC_URL', ['http:', 'https:']),
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
    },
    sessions: {
      ttlMs: integer(env, 'SESSION_TTL_MS', 24 * 3600_000, 1_000, 30 * 24 * 3600_000),
      joinCodeTtlMs: integer(env, 'JOIN_CODE_TTL_MS', 10 * 60_000, 1_000, 24 * 3600_000),
      joinFailuresPerUser: integer(env, 'JOIN_FAILURES_PER_USER', 10, 1, 1_000_000),
      joinFailuresGlobal: integer(env, 'JOIN_FAILURES_GLOBAL', 300, 1, 100_000_000),
      expirySweepMs: integer(env, 'EXPIRY_SWEEP_MS', 60_000, 100, 24 * 3600_000),
      joinThrottleWindowMs: integer(
        env,
        'JOIN_THROTTLE_WINDOW_MS',
        10 * 60_000,
        1_000,
        24 * 3600_000,
      ),
    },
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
      cursorSecret: cursorSecret(env),
    },
    ai: {
      databaseUrl: url(env, 'AI_DATABASE_URL', ['postgres:', 'postgresql:']),
      port: integer(env, 'AI_PORT', 8091, 0, 65535),
      consumerGroup: env.AI_CONSUMER_GROUP || 'constat-ai',
      embedded: flag(env, 'AI_EMBEDDED', true),
      rulesFile: file(env, 'AI_FRAUD_RULES'),
      modelFile: file(env, 'AI_FRAUD_MODEL'),
      retentionDays: integer(env, 'AI_FEATURE_RETENTION_DAYS', 1_095, 1, 36_500),
    },
    hub: {
      compactionIntervalMs: integer(env, 'COMPACTION_INTERVAL_MS', 5_000, 10, 3600_000),
      minMessageLifetimeMs: integer(env, 'HUB_MIN_MESSAGE_LIFETIME_MS', 60_000, 0, 24 * 3600_000),
      readCount: integer(env, 'HUB_READ_COUNT', 1_000, 1, 100_000),
    },
  };
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

/** CURSOR_SECRET, or one derived from what every instance shares: the token verification key. */
function cursorSecret(env: Env): string {
  const material =
    env.CURSOR_SECRET ||
    env.AUTH_JWT_SECRET ||
    env.AUTH_JWT_PUBLIC_KEY ||
    env.AUTH_JWKS_URL ||
    DEVELOPMENT_JWT_SECRET;
  return createHash('sha256').update(`constat-cursor:${material}`).digest('hex');
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

function auth(env: Env, production: boolean): AuthConfig {
  if (env.AUTH_JWKS_URL) {
    return { kind: 'jwks', url: url(env, 'AUTH_JWKS_URL', ['https:', 'http:']) as string };
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
    return { kind: 'hs256', secret, isDevelopmentSecret: false };
  }
  if (production) {
    throw new ConfigError(
      'AUTH_JWT_SECRET',
      'no verification key configured (set AUTH_JWKS_URL, AUTH_JWT_PUBLIC_KEY or AUTH_JWT_SECRET)',
    );
  }
  return { kind: 'hs256', secret: DEVELOPMENT_JWT_SECRET, isDevelopmentSecret: true };
}
