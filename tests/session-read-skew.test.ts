/**
 * A `sessionChanged` message shows one state of the session, never half of two.
 *
 * Answering reads the session's record (status, constat id) and then its document
 * (signatures). A finalization can commit between the two reads: the record read first is
 * still active, while the document, read after, already names its constat (the id is written
 * there only after the commit that finalizes the record). A subscriber once got "ACTIVE" with
 * a constat id that way, on the instance that did not finalize. The reads are interleaved here
 * on purpose, with the services answering in that order, so the race is not left to timing.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parse, subscribe, type ExecutionResult } from 'graphql';
import { createPubSub, createSchema } from 'graphql-yoga';
import pino from 'pino';
import { resolvers } from '../server/graphql/resolvers.js';
import { SCHEMA_SDL } from '../server/graphql/yoga.js';
import type { GraphQLContext } from '../server/graphql/context.js';
import type { SessionRecord } from '../constat/session-record.js';
import type { SessionDocumentView } from '../sync/signing-service.js';
import type { SignatureRecord } from '../constat/constat-doc.js';

const HASH = 'a'.repeat(64);
const SIGNATURE: SignatureRecord = {
  hash: HASH,
  signature: 'c2lnbmF0dXJl',
  deviceId: 'device-a',
  userId: 'user-a',
  signedAt: '2026-12-03T10:00:00.000Z',
};
const CONSTAT_ID = '6569b497-2e37-4bb3-aa63-a2341ce34025';

const active: SessionRecord = {
  schema: 1,
  id: 'session-skew-1',
  formVersion: 'dz-2024',
  status: 'active',
  createdAt: '2026-12-03T09:00:00.000Z',
  expiresAt: '2026-12-04T09:00:00.000Z',
  parties: {
    A: { userId: 'user-a', deviceId: 'device-a' },
    B: { userId: 'user-b', deviceId: 'device-b' },
  },
} as SessionRecord;
const finalized: SessionRecord = { ...active, status: 'finalized', constatId: CONSTAT_ID };

/** A context whose services answer from the scripted states, read after read. */
function context(records: SessionRecord[], documents: SessionDocumentView[]) {
  const pubsub = createPubSub<{ sessionChanged: [id: string, payload: { id: string }] }>();
  const reads = { records: 0, documents: 0 };
  const services = {
    sessions: {
      get: async () => records[Math.min(reads.records++, records.length - 1)],
    },
    signing: {
      describe: async () => documents[Math.min(reads.documents++, documents.length - 1)],
    },
    constats: {
      get: async (id: string) =>
        id === CONSTAT_ID
          ? { contentHash: HASH, signatures: { A: SIGNATURE, B: SIGNATURE } }
          : null,
    },
    pubsub,
    subscriptionBuffer: 16,
    metrics: { subscriptionsCutOff: { inc: () => {} } },
    logger: pino({ level: 'silent' }),
  };
  const ctx = {
    principal: { userId: 'user-a', deviceId: 'device-a', roles: [] },
    viewer: { userId: 'user-a', insurers: [] },
    services,
    loaders: {},
    publicWsBase: 'ws://127.0.0.1:1',
    publicHttpBase: 'http://127.0.0.1:1',
  } as unknown as GraphQLContext;
  return { ctx, pubsub, reads };
}

const schema = createSchema<GraphQLContext>({ typeDefs: SCHEMA_SDL, resolvers });
const SELECTION = parse(`subscription($id: ID!) {
  sessionChanged(id: $id) { id status constatId signatures { role } }
}`);

async function firstMessage(ctx: GraphQLContext, notify: () => void) {
  const result = await subscribe({
    schema,
    document: SELECTION,
    variableValues: { id: active.id },
    contextValue: ctx,
  });
  if (!(Symbol.asyncIterator in result)) throw new Error(JSON.stringify(result.errors));
  const stream = result as AsyncGenerator<ExecutionResult>;
  const next = stream.next();
  notify();
  const message = await next;
  await stream.return(undefined);
  return message.value as ExecutionResult;
}

test('a finalization committed between the record and the document reads: the message is the finalized state', async () => {
  const aSigned: SessionDocumentView = {
    contentHash: HASH,
    signatures: [{ role: 'A', ...SIGNATURE }],
    constatId: undefined,
  };
  const bothSignedAndFinalized: SessionDocumentView = {
    contentHash: HASH,
    signatures: [
      { role: 'A', ...SIGNATURE },
      { role: 'B', ...SIGNATURE },
    ],
    constatId: CONSTAT_ID,
  };
  // Subscribe: active, A signed. Notice: the record is read before the commit (still active),
  // the document after it (names the constat); a third record read finds it finalized.
  const { ctx, pubsub, reads } = context(
    [active, active, finalized],
    [aSigned, bothSignedAndFinalized],
  );
  const message = await firstMessage(ctx, () =>
    pubsub.publish('sessionChanged', active.id, { id: active.id }),
  );
  assert.not.ok(message.errors, JSON.stringify(message.errors));
  assert.equal(JSON.parse(JSON.stringify(message.data)), {
    sessionChanged: {
      id: active.id,
      status: 'FINALIZED',
      constatId: CONSTAT_ID,
      signatures: [{ role: 'A' }, { role: 'B' }],
    },
  });
  assert.is(reads.records, 3, 'the record was read again once the document named its constat');
});

test('an active session whose document names no constat is read once per notice', async () => {
  const signed = (roles: Array<'A' | 'B'>): SessionDocumentView => ({
    contentHash: HASH,
    signatures: roles.map((role) => ({ role, ...SIGNATURE })),
    constatId: undefined,
  });
  const { ctx, pubsub, reads } = context([active], [signed(['A']), signed(['A', 'B'])]);
  const message = await firstMessage(ctx, () =>
    pubsub.publish('sessionChanged', active.id, { id: active.id }),
  );
  assert.equal(JSON.parse(JSON.stringify(message.data)), {
    sessionChanged: {
      id: active.id,
      status: 'ACTIVE',
      constatId: null,
      signatures: [{ role: 'A' }, { role: 'B' }],
    },
  });
  assert.is(reads.records, 2, 'one record read at subscription, one at the notice');
});

test.run();
