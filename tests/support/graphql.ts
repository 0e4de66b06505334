/**
 * Support for the GraphQL suites: rows written straight into `constats` and `constat_events`
 * (timeline fixtures without Kafka), an SSE subscription reader built on fetch, the `/metrics`
 * counters, and the "every field" selection of a Constat. A constat finalized for real is
 * `finalizeConstat` (signing.ts).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type postgres from 'postgres';
import { canonicalJson } from '../../constat/canonical-json.js';
import { completeContent } from '../fixtures/constat.js';
import { REDIS_URL, token } from './server.js';

// --- Rows written directly ------------------------------------------------------------------

export interface ConstatRow {
  partyA: string;
  partyB: string;
  insurerA?: string | null;
  insurerB?: string | null;
  /** Default: now() of the insert. */
  finalizedAt?: Date | string;
}

/**
 * Inserts constats with complete, valid content (the fixtures) and returns their ids in the
 * order given. `finalizedAt` as a string is passed to PostgreSQL as is (microseconds survive).
 */
export async function insertConstats(sql: postgres.Sql, rows: ConstatRow[]): Promise<string[]> {
  const content = completeContent();
  const canonical = canonicalJson(content);
  const hash = createHash('sha256').update(canonical, 'utf8').digest('hex');
  const ids: string[] = [];
  for (const row of rows) {
    const id = randomUUID();
    const signedAt = new Date().toISOString();
    const signatures = {
      A: { hash, signature: 'AA==', userId: row.partyA, deviceId: 'dev-a', signedAt },
      B: { hash, signature: 'AA==', userId: row.partyB, deviceId: 'dev-b', signedAt },
    };
    const finalizedAt =
      row.finalizedAt instanceof Date ? row.finalizedAt.toISOString() : row.finalizedAt;
    await sql`
      insert into constats (id, session_id, form_version, content, canonical_json, content_hash,
        snapshot, signatures, party_a_user, party_b_user, insurer_a, insurer_b, signed_at, finalized_at)
      values (${id}, ${`fixture-${id}`}, 'dz', ${sql.json(content as postgres.JSONValue)}, ${canonical},
        ${hash}, ${Buffer.alloc(0)}, ${sql.json(signatures)}, ${row.partyA}, ${row.partyB},
        ${row.insurerA === undefined ? 'saa' : row.insurerA},
        ${row.insurerB === undefined ? 'trust' : row.insurerB}, ${signedAt},
        coalesce(${finalizedAt ?? null}::text::timestamptz, now()))
    `;
    ids.push(id);
  }
  return ids;
}

/** Copies a stored constat `count` times (new ids and session ids), all finalized now. */
export async function cloneConstat(sql: postgres.Sql, id: string, count: number): Promise<void> {
  await sql`
    insert into constats (id, session_id, form_version, content, canonical_json, content_hash,
      snapshot, signatures, party_a_user, party_b_user, insurer_a, insurer_b, signed_at)
    select gen_random_uuid(), 'clone-' || gen_random_uuid(), form_version, content, canonical_json,
      content_hash, snapshot, signatures, party_a_user, party_b_user, insurer_a, insurer_b, signed_at
    from constats, generate_series(1, ${count}) where id = ${id}
  `;
}

export interface EventRow {
  constatId: string;
  type: string;
  /** The insurer uid (claim events) or `ai-results`. */
  topic: string;
  source?: string;
  time?: Date;
  data: Record<string, unknown>;
}

/** Stores a timeline event as the consumer would; returns its event id. */
export async function insertEvent(sql: postgres.Sql, e: EventRow): Promise<string> {
  const eventId = randomUUID();
  await sql`
    insert into constat_events (event_id, constat_id, topic, source, type, time, data)
    values (${eventId}, ${e.constatId}, ${e.topic}, ${e.source ?? e.topic}, ${e.type},
      ${(e.time ?? new Date()).toISOString()}, ${sql.json(e.data as postgres.JSONValue)})
  `;
  return eventId;
}

// --- SSE subscriptions ----------------------------------------------------------------------

export interface SseMessage {
  event: string;
  data: any;
}

export interface Subscription {
  status: number;
  contentType: string;
  /** `next` and `complete` messages received so far, in order. */
  messages: SseMessage[];
  /** The body when the server answered without a stream (401, 413…). */
  body?: any;
  /** Resolves with the first `next` payload matching `predicate`. */
  next(predicate?: (payload: any) => boolean, timeoutMs?: number): Promise<any>;
  /** True once the server ended the stream. */
  readonly ended: boolean;
  close(): Promise<void>;
}

/**
 * Subscribes over SSE (POST, `Accept: text/event-stream`) and reads the stream in the
 * background with a fetch reader. Resolves once the response headers arrived.
 */
export async function subscribe(
  baseUrl: string,
  bearer: string | undefined,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<Subscription> {
  const controller = new AbortController();
  const res = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: {
      accept: 'text/event-stream',
      'content-type': 'application/json',
      ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
    signal: controller.signal,
  });
  const contentType = res.headers.get('content-type') ?? '';
  const messages: SseMessage[] = [];
  let ended = false;
  let body: any;
  let reading: Promise<void> = Promise.resolve();
  if (!contentType.includes('text/event-stream') || !res.body) {
    const text = await res.text();
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    ended = true;
  } else {
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    reading = (async () => {
      let buffer = '';
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let event = 'message';
            const data: string[] = [];
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) continue; // keep-alive ping
              if (line.startsWith('event:')) event = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
            }
            if (block.split('\n').every((l) => l.startsWith(':') || l === '')) continue;
            const text = data.join('\n');
            let parsed: any = text;
            try {
              parsed = text ? JSON.parse(text) : null;
            } catch {
              // keep the text
            }
            messages.push({ event, data: parsed });
          }
        }
      } catch {
        // aborted by close()
      } finally {
        ended = true;
      }
    })();
  }
  return {
    status: res.status,
    contentType,
    messages,
    ...(body !== undefined ? { body } : {}),
    get ended() {
      return ended;
    },
    async next(predicate = () => true, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = messages.find((m) => m.event === 'next' && predicate(m.data));
        if (found) return found.data;
        if (Date.now() > deadline) {
          throw new Error(
            `no matching subscription message within ${timeoutMs} ms; got ${JSON.stringify(messages)}`,
          );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      controller.abort();
      await reading;
    },
  };
}

/**
 * Waits until some instance listens on the Redis pub/sub channel of a subscription (Yoga's
 * pub/sub names it `<field>:<id>`), so a change raised afterwards cannot be missed.
 */
export async function waitForListeners(channel: string, atLeast = 1, timeoutMs = 10_000) {
  await waitForNumsub(channel, (n) => n >= atLeast, timeoutMs, `nobody subscribed to ${channel}`);
}

/** Waits until no instance listens on `channel` any more (subscriptions ended server-side). */
export async function waitForNoListeners(channel: string, timeoutMs = 10_000) {
  await waitForNumsub(channel, (n) => n === 0, timeoutMs, `${channel} still has listeners`);
}

async function waitForNumsub(
  channel: string,
  done: (count: number) => boolean,
  timeoutMs: number,
  message: string,
) {
  const redis = new Redis(REDIS_URL, { lazyConnect: true });
  try {
    await redis.connect();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [, count] = (await redis.pubsub('NUMSUB', channel)) as [string, number];
      if (done(Number(count))) return;
      if (Date.now() > deadline) throw new Error(message);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    redis.disconnect();
  }
}

// --- Metrics --------------------------------------------------------------------------------

/** The value of an unlabelled counter or gauge on `/metrics`. */
export async function metric(baseUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`metric ${name} not found`);
  return Number(line.slice(name.length + 1));
}

// --- Selections -----------------------------------------------------------------------------

export const TIMELINE_EVENT_FIELDS = 'id type source time data';

/** Every field of a Constat (and of everything below it). */
export const CONSTAT_ALL_FIELDS = `
  id sessionId formVersion status finalizedAt signedAt contentHash
  pdf { url sha256 version createdAt } liabilitySuggestion { shareA shareB rule }
  parties { role userId insurer { uid name } }
  accident {
    date time injuries otherVehicleDamage objectDamage
    place { country wilaya commune address gps { lat lon accuracyM } }
    witnesses { name address phone }
  }
  vehicles {
    role comingFrom goingTo visibleDamage remarks circumstanceCount
    policyholder { lastName firstName address phone email }
    vehicle { make model plate plateCountry trailerPlate }
    insurer { company { uid name } policyNumber greenCardNumber validFrom validTo agency coversOwnDamage }
    driver { lastName firstName birthDate address licenceNumber licenceCategory licenceIssuedOn licenceIssuedBy licenceValidUntil }
    impactPoint { x y side }
    circumstances { id label(lang: "fr") }
  }
  signatures { role hash signature userId deviceId signedAt }
  claims { insurer { uid name } claimNumber status events { ${TIMELINE_EVENT_FIELDS} } }
  aiFindings { ${TIMELINE_EVENT_FIELDS} }
`;

export const SESSION_ALL_FIELDS = `
  id formVersion status myRole createdAt expiresAt constatId contentHash
  parties { role userId deviceId joinedAt }
  signatures { role hash signature userId deviceId signedAt }
`;

/** Any sign of a stack trace or source location in a response text. */
export function leaksStack(text: string): boolean {
  return /\bat [^\s]+ \(|\.ts:\d+|\.js:\d+|"stack"|stacktrace|node_modules/i.test(text);
}

/** Who may ask about a finalized constat: its parties, their insurers' staff, and outsiders. */
export type Viewer = 'partyA' | 'partyB' | 'insurerA' | 'insurerB' | 'otherInsurer' | 'stranger';

/** Tokens for each kind of viewer of a constat whose vehicles are insured by saa and trust. */
export async function viewersOf(constat: {
  tokenA: string;
  tokenB: string;
}): Promise<Record<Viewer, string>> {
  const tag = () => randomBytes(4).toString('hex');
  return {
    partyA: constat.tokenA,
    partyB: constat.tokenB,
    insurerA: await token(`staff-saa-${tag()}`, 'desk', { roles: ['insurer:saa'] }),
    insurerB: await token(`staff-trust-${tag()}`, 'desk', { roles: ['insurer:trust'] }),
    otherInsurer: await token(`staff-caat-${tag()}`, 'desk', { roles: ['insurer:caat'] }),
    stranger: await token(`stranger-${tag()}`, 'phone'),
  };
}
