/**
 * The webhook channel end to end: a server on PostgreSQL with Kafka on, companies configured
 * through the operator commands, and real HTTPS receivers (a self-signed certificate made here,
 * trusted by the server through WEBHOOK_CA_FILE). The receiver checks every signature with the
 * `standardwebhooks` reference library, not with the server's code.
 *
 * Proves: a finalized constat reaches a webhook-only company and a `both` company (webhook and
 * its Kafka topic), and a receiver that holds its answer delays neither Kafka nor the other
 * company; an endpoint down then up gets each event once, in order; Retry-After on 429 is
 * honoured; 410 disables the endpoint until an operator enables it; after the last attempt a
 * delivery is dead-lettered, listed, and replayed by `constat deliveries replay`.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { Webhook } from 'standardwebhooks';
import { startTestServer, type TestServer } from './support/server.js';
import { eventually, finalizeConstat } from './support/signing.js';
import { testKafka, TopicReader, waitForTopics } from './support/kafka.js';
import { setUp } from './support/suite.js';
import {
  testCertificate,
  writeCaFile,
  WebhookReceiver,
  type ReceivedHook,
} from '../scripts/insurers/webhook-receiver.js';
import { runCompanies, runDeliveries } from '../scripts/companies.js';
import { cloudEvent, eventHeaders } from '../integrations/events.js';

const SCHEDULE = '0,100ms,200ms,300ms,400ms,500ms,500ms,500ms,500ms,500ms';
const ATTEMPTS = SCHEDULE.split(',').length;

interface Ctx {
  server: TestServer;
  sql: postgres.Sql;
  dir: string;
  saa: WebhookReceiver;
  trust: WebhookReceiver;
  reader: TopicReader;
  secrets: Record<string, string>;
}

const test = suite<Ctx>('webhooks', { secrets: {} } as Ctx);

/** Runs an operator command in process; returns what it printed. */
async function operator(ctx: Ctx, which: 'companies' | 'deliveries', ...argv: string[]) {
  const lines: string[] = [];
  await (which === 'companies' ? runCompanies : runDeliveries)(argv, ctx.sql, (l) => lines.push(l));
  return lines.join('\n');
}

/** Points a company at a receiver (enabled afresh) and keeps its webhook secret. */
async function deliverTo(ctx: Ctx, company: string, mode: string, receiver: WebhookReceiver) {
  const printed = await operator(
    ctx,
    'companies',
    'set-delivery',
    company,
    mode,
    '--url',
    receiver.url,
  );
  const secret = /whsec_\S+/.exec(printed)?.[0];
  if (secret) ctx.secrets[company] = secret;
}

/** The receiver's check, with the reference library: throws unless the signature verifies. */
function verified(
  ctx: Ctx,
  company: string,
  hook: ReceivedHook,
): { id: string; type: string; subject: string } {
  return new Webhook(ctx.secrets[company]!).verify(hook.body, hook.headers) as {
    id: string;
    type: string;
    subject: string;
  };
}

/** An event committed to the outbox for a company's topic, as the finalizer or report writes it. */
async function commitEvent(ctx: Ctx, topic: string, constatId: string, n: number): Promise<string> {
  const event = cloudEvent('dz.constat.document_ready.v1', constatId, { n });
  await ctx.sql`
    insert into outbox (id, topic, message_key, payload, headers)
    values (${randomUUID()}, ${topic}, ${constatId}, ${ctx.sql.json(event as never)}, ${ctx.sql.json(eventHeaders(event))})
  `;
  return event.id;
}

async function deliveryStates(ctx: Ctx, eventIds: string[]) {
  return ctx.sql<{ event_id: string; status: string; attempts: number }[]>`
    select event_id, status, attempts from webhook_deliveries where event_id = any(${ctx.sql.array(eventIds)})
  `;
}

setUp(test, async (ctx) => {
  ctx.dir = await mkdtemp(path.join(os.tmpdir(), 'constat-webhooks-'));
  const certificate = await testCertificate();
  const caFile = await writeCaFile(path.join(ctx.dir, 'ca.pem'), certificate);
  ctx.saa = new WebhookReceiver(certificate);
  ctx.trust = new WebhookReceiver(certificate);
  await ctx.saa.start();
  await ctx.trust.start();
  ctx.server = await startTestServer({
    database: 'postgres',
    hub: 'memory',
    kafka: true,
    env: {
      WEBHOOK_CA_FILE: caFile,
      WEBHOOK_RETRY_SCHEDULE: SCHEDULE,
      WEBHOOK_POLL_MS: '50',
      WEBHOOK_TIMEOUT_MS: '60000',
      OUTBOX_POLL_MS: '50',
    },
  });
  ctx.sql = postgres(ctx.server.databaseUrl!, { max: 3, onnotice: () => {} });
  const kafka = testKafka();
  await waitForTopics(kafka, ['saa', 'trust']);
  ctx.reader = new TopicReader(kafka, ['saa', 'trust']);
  await ctx.reader.start();
});

test.after(async (ctx) => {
  await ctx.reader?.close();
  await ctx.server?.stop();
  await ctx.sql?.end({ timeout: 5 });
  await ctx.saa?.stop();
  await ctx.trust?.stop();
  if (ctx.dir) await rm(ctx.dir, { recursive: true, force: true });
});

test('a finalized constat reaches each company by its mode; a slow endpoint delays nobody else', async (ctx) => {
  await deliverTo(ctx, 'saa', 'webhook', ctx.saa);
  await deliverTo(ctx, 'trust', 'both', ctx.trust);
  let release: () => void = () => {};
  const held = new Promise<void>((r) => (release = r));
  // saa's endpoint takes the request and does not answer until the test says so.
  ctx.saa.respond = async () => {
    await held;
    return { status: 200 };
  };
  ctx.trust.respond = () => ({ status: 204 });
  const { constatId } = await finalizeConstat(ctx.server);
  await eventually(
    async () => ctx.trust.forConstat(constatId).length > 0 || undefined,
    30_000,
    'trust never got its webhook',
  );
  await ctx.reader.waitFor(
    () => ctx.reader.on('trust', (m) => m.key === constatId).length > 0,
    30_000,
    'the trust topic never got the constat',
  );
  // Both arrived while saa's request was still open.
  assert.is(ctx.saa.forConstat(constatId).length, 1, 'saa got its request');
  const [state] = await ctx.sql<{ status: string }[]>`
    select d.status from webhook_deliveries d join outbox o on o.id = d.outbox_id
    where d.company = 'saa' and o.message_key = ${constatId}`;
  assert.is(state?.status, 'pending', 'saa has not answered yet');
  release();

  const trustEvent = verified(
    ctx,
    'trust',
    ctx.trust.received.find((h) => h.body.includes(constatId))!,
  );
  assert.is(trustEvent.type, 'dz.constat.finalized.v1');
  assert.is(trustEvent.subject, constatId);
  const saaEvent = verified(
    ctx,
    'saa',
    ctx.saa.received.find((h) => h.body.includes(constatId))!,
  );
  assert.is(saaEvent.id, trustEvent.id, 'one event, the same id for every company');
  // The Kafka message of trust carries that same event; saa (webhook only) has no Kafka row.
  const kafkaEvent = ctx.reader.on('trust', (m) => m.key === constatId)[0]!.json;
  assert.is(kafkaEvent.id, trustEvent.id);
  const rows = await ctx.sql<{ topic: string; kafka: boolean }[]>`
    select topic, kafka from outbox where message_key = ${constatId} and topic in ('saa', 'trust')`;
  assert.equal(Object.fromEntries(rows.map((r) => [r.topic, r.kafka])), {
    saa: false,
    trust: true,
  });
  await eventually(
    async () =>
      (await deliveryStates(ctx, [saaEvent.id])).every((d) => d.status === 'delivered') ||
      undefined,
    30_000,
    'saa delivery never recorded',
  );
  // A forged signature does not verify with the reference library.
  const hook = ctx.saa.received.find((h) => h.body.includes(constatId))!;
  assert.throws(() =>
    verified(ctx, 'saa', { ...hook, body: hook.body.replace(constatId, randomUUID()) }),
  );
});

test('an endpoint down then up gets every event once, in order', async (ctx) => {
  ctx.saa.respond = () => ({ status: 200 });
  await deliverTo(ctx, 'saa', 'webhook', ctx.saa);
  await ctx.saa.stop();
  const constatId = randomUUID();
  const ids: string[] = [];
  for (let n = 0; n < 3; n++) ids.push(await commitEvent(ctx, 'saa', constatId, n));
  // The first event is tried (and fails: nothing listens) while the others wait behind it.
  await eventually(
    async () => (await deliveryStates(ctx, ids)).some((d) => d.attempts >= 2) || undefined,
    30_000,
    'no failed attempt recorded',
  );
  const states = await deliveryStates(ctx, ids);
  assert.ok(states.every((d) => d.status === 'pending'));
  await ctx.saa.start();
  await eventually(
    async () =>
      (await deliveryStates(ctx, ids)).every((d) => d.status === 'delivered') || undefined,
    30_000,
    'not every event was delivered after the endpoint came back',
  );
  const got = ctx.saa.forConstat(constatId);
  assert.equal(
    got.map((e) => e.id),
    ids,
    'each once, in commit order',
  );
  for (const hook of ctx.saa.received.filter((h) => h.body.includes(constatId)))
    verified(ctx, 'saa', hook);
});

test('429 with Retry-After: the next attempt waits as long as asked', async (ctx) => {
  await deliverTo(ctx, 'saa', 'webhook', ctx.saa);
  const constatId = randomUUID();
  let first = true;
  // Only this event's first attempt is refused: an earlier test's delivery still arriving
  // must not take the 429 in its place.
  ctx.saa.respond = (hook) => {
    if (!first || !hook.body.includes(constatId)) return { status: 202 };
    first = false;
    return { status: 429, headers: { 'retry-after': '2' } };
  };
  const id = await commitEvent(ctx, 'saa', constatId, 0);
  await eventually(
    async () => (await deliveryStates(ctx, [id]))[0]?.status === 'delivered' || undefined,
    30_000,
    'never delivered after the 429',
  );
  const hooks = ctx.saa.withId(id);
  assert.is(hooks.length, 2);
  // The schedule alone would have retried after ~100 ms.
  assert.ok(
    hooks[1]!.at - hooks[0]!.at >= 1_900,
    `retried after ${hooks[1]!.at - hooks[0]!.at} ms`,
  );
});

test('410 disables the endpoint; deliveries wait until an operator enables it', async (ctx) => {
  await deliverTo(ctx, 'saa', 'webhook', ctx.saa);
  ctx.saa.respond = () => ({ status: 410 });
  const constatId = randomUUID();
  const first = await commitEvent(ctx, 'saa', constatId, 0);
  const [company] = await eventually(
    async () => {
      const rows = await ctx.sql<{ disabled_reason: string | null }[]>`
      select webhook_disabled_reason as disabled_reason from companies where uid = 'saa' and webhook_disabled_at is not null`;
      return rows.length ? rows : undefined;
    },
    30_000,
    'the endpoint was never disabled',
  );
  assert.is(company!.disabled_reason, 'HTTP 410 Gone');
  const second = await commitEvent(ctx, 'saa', constatId, 1);
  assert.match(await operator(ctx, 'deliveries', 'failing'), /saa .*HTTP 410 Gone/);
  const metrics = await (await fetch(`${ctx.server.url}/metrics`)).text();
  assert.match(metrics, /constat_webhook_endpoint_disabled\{company="saa"\} 1/);
  assert.is(ctx.saa.withId(second).length, 0, 'nothing is sent to a disabled endpoint');

  ctx.saa.respond = () => ({ status: 200 });
  await operator(ctx, 'companies', 'enable-webhook', 'saa');
  await eventually(
    async () =>
      (await deliveryStates(ctx, [first, second])).every((d) => d.status === 'delivered') ||
      undefined,
    30_000,
    'the waiting deliveries did not go out once enabled',
  );
  assert.equal(
    ctx.saa
      .forConstat(constatId)
      .map((e) => e.id)
      .slice(-2),
    [first, second],
  );
});

test('after the last attempt a delivery is dead-lettered, and `constat deliveries replay` sends it', async (ctx) => {
  await deliverTo(ctx, 'saa', 'webhook', ctx.saa);
  ctx.saa.respond = () => ({ status: 500 });
  const constatId = randomUUID();
  const id = await commitEvent(ctx, 'saa', constatId, 0);
  await eventually(
    async () => (await deliveryStates(ctx, [id]))[0]?.status === 'dead' || undefined,
    60_000,
    'never dead-lettered',
  );
  assert.is(ctx.saa.withId(id).length, ATTEMPTS, 'every scheduled attempt was made');
  assert.match(await operator(ctx, 'deliveries', 'dead', '--company', 'saa'), new RegExp(id));

  ctx.saa.respond = () => ({ status: 200 });
  // The real command, as an operator runs it.
  const printed = await new Promise<string>((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['bin/constat.js', 'deliveries', 'replay', '--company', 'saa'],
      { env: { ...process.env, DATABASE_URL: ctx.server.databaseUrl!, LOG_LEVEL: 'silent' } },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`exit ${code}: ${out}`)),
    );
  });
  assert.match(printed, /1 dead-lettered delivery queued again/);
  await eventually(
    async () => (await deliveryStates(ctx, [id]))[0]?.status === 'delivered' || undefined,
    30_000,
    'the replayed delivery was not delivered',
  );
  verified(ctx, 'saa', ctx.saa.withId(id).at(-1)!);
});

test.run();
