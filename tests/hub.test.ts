/**
 * The hub contract, run against the in-process hub and the Redis hub, plus what only a shared
 * hub promises (delivery between instances, catch-up, isolation of a bad entry) and the
 * compactor's lease.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import * as Y from 'yjs';
import { MemoryHub, type Hub, type HubMessage } from '../sync/hub.js';
import { RedisHub } from '../hub/redis-hub.js';
import { Compactor } from '../hub/compactor.js';
import { DraftFolder } from '../sync/draft-folder.js';
import { createYjsOffload, type YjsOffload } from '../sync/yjs-offload.js';
import { redisKeys, type RedisKeys } from '../hub/redis-keys.js';
import type { DraftStore, StoredDraft } from '../sync/draft-store.js';
import { waitFor } from './support/device.js';
import { REDIS_URL, deleteRedisKeys } from './support/server.js';
import { createTestDatabase, type TestDatabase } from '../persistence/test-database.js';
import { migrate } from '../persistence/migrate.js';
import { createDraftsRepository } from '../persistence/drafts-repository.js';
import { setUp } from './support/suite.js';

const logger = pino({ level: 'silent' });
const update = (text: string): Uint8Array => {
  const doc = new Y.Doc();
  doc.getText('t').insert(0, text);
  return Y.encodeStateAsUpdate(doc);
};
const sessionId = () => `hub-${randomBytes(6).toString('hex')}`;
/** Subscribes to a session and collects the text each delivered update carries. */
async function subscribeTexts(hub: Hub, id: string): Promise<string[]> {
  const seen: string[] = [];
  await hub.subscribe(id, (m) => {
    const doc = new Y.Doc();
    Y.applyUpdate(doc, m.update);
    seen.push(doc.getText('t').toString());
  });
  return seen;
}

interface HubFactory {
  name: string;
  make(): Promise<{ hub: Hub; peer?: Hub; close(): Promise<void> }>;
}

const prefix = `constat-test:hub-${process.pid}:`;
const connections: Redis[] = [];
const connect = () => {
  const r = new Redis(REDIS_URL);
  connections.push(r);
  return r;
};
/**
 * A connection in MONITOR mode. ioredis switches a connection to monitoring one microtask after
 * MONITOR's reply: a monitor line that arrives in the same read as that reply (another client's
 * command, say a test running beside this one) finds no command waiting and is emitted as a
 * "Command queue state error", which with no listener ends the process. Such a line precedes
 * everything a test watches, so that error is ignored; any other is kept and thrown on close.
 */
async function monitorRedis(): Promise<{ monitor: Redis; close(): void }> {
  const monitor = new Redis(REDIS_URL, { monitor: true });
  const errors: Error[] = [];
  monitor.on('error', (err: Error) => {
    if (!err.message.startsWith('Command queue state error')) errors.push(err);
  });
  await new Promise<void>((resolve, reject) => {
    monitor.once('monitoring', resolve);
    monitor.once('end', () => reject(new Error(`monitor connection ended: ${errors[0]}`)));
  });
  return {
    monitor,
    close() {
      monitor.disconnect();
      if (errors.length > 0) throw errors[0];
    },
  };
}
/**
 * The stream reads (XREAD, XRANGE…) of this file's keys that `monitor` sees from now on. MONITOR
 * streams commands a little after they ran: a marker sent now and seen by the monitor says that
 * what it shows next was not sent before.
 */
async function streamReads(monitor: Redis): Promise<string[]> {
  const reads: string[] = [];
  const marker = `${prefix}marker-${randomBytes(4).toString('hex')}`;
  let recording = false;
  const seen = new Promise<void>((resolve) => {
    monitor.on('monitor', (_time: string, args: string[]) => {
      const command = String(args[0]).toLowerCase();
      if (!recording) {
        if (command === 'echo' && String(args[1]) === marker) {
          recording = true;
          resolve();
        }
        return;
      }
      if (/^x(read|range|revrange)/.test(command) && args.some((a) => String(a).startsWith(prefix)))
        reads.push(command);
    });
  });
  await connect().echo(marker);
  await seen;
  return reads;
}
/** A hub on connections of its own, or on a given notice connection (to pause or kill it). */
const redisHub = (keys: RedisKeys, subscriber: Redis = connect()) =>
  new RedisHub({
    redis: connect(),
    subscriber,
    keys,
    logger,
    compactionDelayMs: 1_000,
    membersExpiryMs: 3_600_000,
  });

const factories: HubFactory[] = [
  {
    name: 'memory',
    make: async () => {
      const hub = new MemoryHub();
      return { hub, close: () => hub.close() };
    },
  },
  {
    name: 'redis',
    make: async () => {
      const keys = redisKeys(prefix);
      const hub = redisHub(keys);
      const peer = redisHub(keys);
      return {
        hub,
        peer,
        close: async () => void (await Promise.all([hub.close(), peer.close()])),
      };
    },
  },
];

for (const factory of factories) {
  const test = suite(`hub contract (${factory.name})`);

  test('append resolves, subscribe resolves and unsubscribes, close is idempotent', async () => {
    const { hub, close } = await factory.make();
    const id = sessionId();
    const seen: HubMessage[] = [];
    const unsubscribe = await hub.subscribe(id, (m) => seen.push(m));
    await hub.append(id, { kind: 'update', update: update('x') });
    unsubscribe();
    unsubscribe();
    await close();
    await close();
    assert.ok(seen.length <= 1); // a shared hub may deliver its own append back; Yjs ignores it
  });

  test('a subscriber gets what the hub holds, then new messages, in order', async () => {
    const { hub, peer, close } = await factory.make();
    try {
      if (!hub.shared) return; // one instance: nothing to carry
      const id = sessionId();
      await peer!.append(id, { kind: 'update', update: update('1') });
      await peer!.append(id, { kind: 'awareness', update: new Uint8Array([1, 2, 3]) });
      const seen: HubMessage[] = [];
      await hub.subscribe(id, (m) => seen.push(m));
      assert.equal(
        seen.map((m) => m.kind),
        ['update', 'awareness'],
        'held messages delivered before subscribe resolves',
      );
      for (let i = 2; i <= 20; i++)
        await peer!.append(id, { kind: 'update', update: update(String(i)) });
      await waitFor(() => seen.length === 21, 5_000, 'new messages not delivered');
      const doc = new Y.Doc();
      for (const m of seen) if (m.kind === 'update') Y.applyUpdate(doc, m.update);
      assert.equal(seen[1]!.update, new Uint8Array([1, 2, 3]));
    } finally {
      await close();
    }
  });

  test.run();
}

const shared = suite<{ keys: RedisKeys }>('redis hub', { keys: redisKeys(prefix) });

shared.after(async () => {
  await deleteRedisKeys(prefix);
});

shared('a subscription added while others are idle is served at once', async ({ keys }) => {
  const hub = redisHub(keys);
  const peer = redisHub(keys);
  try {
    const first = sessionId();
    await hub.subscribe(first, () => {});
    await new Promise((r) => setTimeout(r, 100)); // the loop is now blocked on `first`
    const second = sessionId();
    const seen: HubMessage[] = [];
    await hub.subscribe(second, (m) => seen.push(m));
    const started = Date.now();
    await peer.append(second, { kind: 'update', update: update('fast') });
    await waitFor(() => seen.length === 1, 2_000, 'not delivered');
    assert.ok(Date.now() - started < 1_000, `took ${Date.now() - started} ms`);
  } finally {
    await Promise.all([hub.close(), peer.close()]);
  }
});

shared('in-order notices are delivered without reading any stream', async ({ keys }) => {
  const hub = redisHub(keys);
  const peer = redisHub(keys);
  const { monitor, close: closeMonitor } = await monitorRedis();
  try {
    const sessions = Array.from({ length: 300 }, () => sessionId());
    const seen = new Map<string, number>();
    for (const id of sessions) await hub.subscribe(id, () => seen.set(id, (seen.get(id) ?? 0) + 1));
    const reads = await streamReads(monitor);
    const active = sessions.slice(0, 10);
    for (let i = 0; i < 10; i++)
      for (const id of active) await peer.append(id, { kind: 'update', update: update(`${i}`) });
    await waitFor(() => active.every((id) => seen.get(id) === 10), 5_000, 'notices not delivered');
    assert.equal(reads, [], 'no stream was read for 100 appends to 10 of 300 live sessions');
  } finally {
    closeMonitor();
    await Promise.all([hub.close(), peer.close()]);
  }
});

shared(
  'an instance is not sent its own appends back, and reads nothing for them',
  async ({ keys }) => {
    const hub = redisHub(keys);
    const peer = redisHub(keys);
    const { monitor, close: closeMonitor } = await monitorRedis();
    try {
      const id = sessionId();
      const mine = await subscribeTexts(hub, id);
      const theirs = await subscribeTexts(peer, id);
      const reads = await streamReads(monitor);
      // Interleaved: a reply to one side's append may come before the other side's notice.
      const order: Array<[RedisHub, string]> = [
        [hub, 'h1'],
        [peer, 'p1'],
        [hub, 'h2'],
        [hub, 'h3'],
        [peer, 'p2'],
        [hub, 'h4'],
        [peer, 'p3'],
        [peer, 'p4'],
      ];
      for (const [from, text] of order)
        await from.append(id, { kind: 'update', update: update(text) });
      await waitFor(() => mine.length === 4 && theirs.length === 4, 2_000, 'notices not delivered');
      await new Promise((r) => setTimeout(r, 100)); // anything sent back would be here by now
      assert.equal(mine, ['p1', 'p2', 'p3', 'p4'], "each gets the other's appends, in order, once");
      assert.equal(theirs, ['h1', 'h2', 'h3', 'h4']);
      assert.equal(reads, [], 'no stream read: own appends keep the chain of ids unbroken');
    } finally {
      closeMonitor();
      await Promise.all([hub.close(), peer.close()]);
    }
  },
);

shared(
  "a peer's notice that comes after the reply to our next append is chained, with no read",
  async ({ keys }) => {
    const subscriber = connect();
    const hub = redisHub(keys, subscriber);
    const peer = redisHub(keys);
    const { monitor, close: closeMonitor } = await monitorRedis();
    try {
      const id = sessionId();
      const mine = await subscribeTexts(hub, id);
      const theirs = await subscribeTexts(peer, id);
      const reads = await streamReads(monitor);
      // The peer's notice waits in the paused socket while our append's reply comes: our
      // entry follows one this instance has not had yet.
      subscriber.stream.pause();
      await peer.append(id, { kind: 'update', update: update('p1') });
      await hub.append(id, { kind: 'update', update: update('h1') });
      subscriber.stream.resume();
      await waitFor(() => mine.length === 1, 2_000, "the peer's first notice not delivered");
      // Its previous id is our own append: known to follow p1, so no gap and no read.
      await peer.append(id, { kind: 'update', update: update('p2') });
      await waitFor(() => mine.length === 2 && theirs.length === 1, 2_000, 'notices not delivered');
      assert.equal(mine, ['p1', 'p2']);
      assert.equal(theirs, ['h1']);
      assert.equal(reads, [], 'no stream read: the pending own append was chained');
    } finally {
      closeMonitor();
      await Promise.all([hub.close(), peer.close()]);
    }
  },
);

shared(
  'one channel per instance whatever it holds; members join, leave, and the dead are dropped',
  async ({ keys }) => {
    const hub = redisHub(keys);
    const peer = redisHub(keys);
    const raw = connect();
    try {
      const sessions = Array.from({ length: 20 }, () => sessionId());
      const leave = await Promise.all(sessions.map((id) => hub.subscribe(id, () => {})));
      await peer.subscribe(sessions[0]!, () => {});
      const channels = (await raw.pubsub('CHANNELS', `${prefix}*`)) as string[];
      assert.ok(channels.includes(keys.instanceChannel(hub.instanceId)));
      assert.ok(channels.includes(keys.instanceChannel(peer.instanceId)));
      assert.equal(
        channels.filter((c) => sessions.some((id) => c.includes(id))),
        [],
        'no channel per session',
      );
      assert.equal(
        (await raw.smembers(keys.members(sessions[0]!))).sort(),
        [hub.instanceId, peer.instanceId].sort(),
      );
      assert.ok((await raw.pttl(keys.members(sessions[0]!))) > 0, 'a member set expires');
      leave[1]!();
      // The leaving SREM is sent on the hub's connection: a later command there answers after it.
      await hub.subscribe(sessionId(), () => {});
      assert.is(await raw.exists(keys.members(sessions[1]!)), 0, 'the last member left the set');
      // An instance that stops without leaving (a crash): the next append finds no one on its
      // channel and drops it.
      await hub.close();
      assert.ok((await raw.sismember(keys.members(sessions[0]!), hub.instanceId)) === 1);
      await peer.append(sessions[0]!, { kind: 'update', update: update('x') });
      assert.equal(await raw.smembers(keys.members(sessions[0]!)), [peer.instanceId]);
    } finally {
      await Promise.all([hub.close(), peer.close()]);
    }
  },
);

shared(
  'after Redis lost its data, an instance that only receives joins its sessions again',
  async ({ keys }) => {
    const lostPrefix = `${prefix}lost:`;
    const own = redisKeys(lostPrefix);
    const make = () =>
      new RedisHub({
        redis: connect(),
        subscriber: connect(),
        keys: own,
        logger,
        compactionDelayMs: 1_000,
        membersExpiryMs: 3_600_000,
        markerCheckMs: 100,
      });
    const hub = make();
    const peer = make();
    try {
      const id = sessionId();
      const seen = await subscribeTexts(hub, id);
      await peer.subscribe(id, () => {});
      await peer.append(id, { kind: 'update', update: update('before') });
      await waitFor(() => seen.length === 1, 2_000, 'first notice not delivered');
      await deleteRedisKeys(lostPrefix); // what FLUSHDB does to this keyspace
      await peer.append(id, { kind: 'update', update: update('after') });
      await waitFor(() => seen.length === 2, 3_000, 'the append after the loss never arrived');
      assert.equal(seen, ['before', 'after']);
      assert.equal(await connect().sismember(own.members(id), hub.instanceId), 1, 'joined again');
    } finally {
      await Promise.all([hub.close(), peer.close()]);
    }
  },
);

shared('the previous id is kept beside the stream, not read with XINFO', async ({ keys }) => {
  const hub = redisHub(keys);
  const peer = redisHub(keys);
  const raw = connect();
  const { monitor, close: closeMonitor } = await monitorRedis();
  try {
    const id = sessionId();
    const seen = await subscribeTexts(hub, id);
    const xinfo: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (String(args[0]).toLowerCase() === 'xinfo') xinfo.push(String(args[2]));
    });
    const lastGenerated = async () => {
      const info = (await raw.xinfo('STREAM', keys.updates(id))) as unknown[];
      return String(info[info.indexOf('last-generated-id') + 1]);
    };
    for (const word of ['one', 'two', 'three'])
      await peer.append(id, { kind: 'update', update: update(word) });
    await waitFor(() => seen.length === 3, 2_000, 'notices not delivered');
    assert.equal(xinfo, [], 'appends to a stream with its last-id key read no XINFO');
    assert.is(await raw.get(keys.lastId(id)), await lastGenerated());

    // A last-id key gone apart from its stream (expired first): the append falls back to
    // XINFO, keeps the chain of ids intact, and gives the key the stream's expiry.
    await raw.del(keys.lastId(id));
    await raw.pexpire(keys.updates(id), 60_000);
    await peer.append(id, { kind: 'update', update: update('four') });
    await waitFor(() => seen.length === 4, 2_000, 'notice after the fallback not delivered');
    assert.equal(seen, ['one', 'two', 'three', 'four'], 'in order, each once');
    assert.is(await raw.get(keys.lastId(id)), await lastGenerated());
    const ttl = await raw.pttl(keys.lastId(id));
    assert.ok(ttl > 0 && ttl <= 60_000, `the last-id key expires with its stream (${ttl} ms)`);
  } finally {
    closeMonitor();
    await Promise.all([hub.close(), peer.close()]);
  }
});

shared('appends made while the notice connection was down are caught up', async ({ keys }) => {
  const subscriber = connect();
  const subscriberId = String(await subscriber.client('ID'));
  const hub = redisHub(keys, subscriber);
  const peer = redisHub(keys);
  const raw = connect();
  try {
    const id = sessionId();
    const seen = await subscribeTexts(hub, id);
    await peer.append(id, { kind: 'update', update: update('before') });
    await waitFor(() => seen.length === 1, 2_000, 'first notice not delivered');
    await raw.client('KILL', 'ID', subscriberId);
    // Appended while the connection is down or resubscribing: these notices are lost.
    await peer.append(id, { kind: 'update', update: update('during 1') });
    await peer.append(id, { kind: 'update', update: update('during 2') });
    await waitFor(() => seen.length === 3, 5_000, `caught up only ${JSON.stringify(seen)}`);
    await peer.append(id, { kind: 'update', update: update('after') });
    await waitFor(() => seen.length === 4, 2_000, 'notices not delivered after the reconnect');
    assert.equal(seen, ['before', 'during 1', 'during 2', 'after'], 'in order, each once');
  } finally {
    await Promise.all([hub.close(), peer.close()]);
  }
});

shared(
  'a session whose subscribe ends as the catch-up loop stops is read, at every interleaving',
  async ({ keys }) => {
    // The race: a notice for a session whose subscribe() is still in flight only marks it
    // behind; its subscribe then asks for a catch-up. If that request lands while the loop is
    // finishing (it has found nothing to read but is not yet marked stopped), it must not be
    // dropped, or the entry waits for the next notice, which after a burst's last edit never
    // comes. Here the loop's stream read and the subscribe's reply are held and released
    // together, the subscribe resuming 0 to 15 microtasks after the loop: every relative order
    // of the two is tried.
    const redis = connect();
    const hub = new RedisHub({
      redis,
      subscriber: connect(),
      keys,
      logger,
      compactionDelayMs: 1_000,
      membersExpiryMs: 3_600_000,
    });
    const peer = redisHub(keys);
    const raw = connect();
    type Call = (...args: unknown[]) => Promise<unknown>;
    let readGate: { held: () => void; release: Promise<void> } | undefined;
    const xread = redis.xreadBuffer.bind(redis) as Call;
    (redis as unknown as { xreadBuffer: Call }).xreadBuffer = async (...args) => {
      const reply = await xread(...args);
      const gate = readGate;
      readGate = undefined;
      if (gate) {
        gate.held();
        await gate.release;
      }
      return reply;
    };
    let subscribeGate: { held: () => void; release: Promise<void>; ticks: number } | undefined;
    const pipeline = redis.pipeline.bind(redis);
    redis.pipeline = (...args: Parameters<Redis['pipeline']>) => {
      const p = pipeline(...args);
      const gate = subscribeGate;
      subscribeGate = undefined;
      if (gate) {
        const exec = p.exec.bind(p);
        p.exec = async () => {
          const replies = await exec();
          gate.held();
          await gate.release;
          for (let i = 0; i < gate.ticks; i++) await null;
          return replies;
        };
      }
      return p;
    };
    try {
      await hub.subscribe(sessionId(), () => {});
      for (let ticks = 0; ticks <= 15; ticks++) {
        await new Promise((r) => setTimeout(r, 50)); // the last round's loop has stopped
        let release!: () => void;
        const released = new Promise<void>((r) => (release = r));
        // A malformed notice: the hub reads every stream it holds, and that read is held.
        const readHeld = new Promise<void>((held) => (readGate = { held, release: released }));
        await raw.publish(keys.instanceChannel(hub.instanceId), 'not a notice');
        await readHeld;
        // A new session's subscribe, its reply held after Redis ran it.
        const id = sessionId();
        const seen: HubMessage[] = [];
        const subscribeHeld = new Promise<void>(
          (held) => (subscribeGate = { held, release: released, ticks }),
        );
        const subscribing = hub.subscribe(id, (m) => seen.push(m));
        await subscribeHeld;
        // Appended after the subscribe read the stream: only its notice, which arrives while
        // the subscription is not ready, tells the hub about it.
        await peer.append(id, { kind: 'update', update: update(`after ${ticks}`) });
        await new Promise((r) => setTimeout(r, 100));
        release();
        await subscribing;
        await waitFor(
          () => seen.length === 1,
          2_000,
          `${ticks} microtasks apart: the entry appended during the subscribe never arrived`,
        );
      }
    } finally {
      await Promise.all([hub.close(), peer.close()]);
    }
  },
);

shared('a bad entry in one stream does not stop delivery for other sessions', async ({ keys }) => {
  const hub = redisHub(keys);
  const peer = redisHub(keys);
  const raw = connect();
  try {
    const bad = sessionId();
    const good = sessionId();
    const seenBad: HubMessage[] = [];
    const seenGood: HubMessage[] = [];
    await hub.subscribe(bad, (m) => seenBad.push(m));
    await hub.subscribe(good, (m) => seenGood.push(m));
    await raw.xadd(keys.updates(bad), '*', 'junk', 'value');
    await raw.xadd(keys.updates(bad), '*', 'm', Buffer.from([9, 9]));
    await peer.append(bad, { kind: 'update', update: update('after junk') });
    await peer.append(good, { kind: 'update', update: update('good') });
    await waitFor(() => seenGood.length === 1 && seenBad.length === 1, 3_000, 'delivery stalled');
  } finally {
    await Promise.all([hub.close(), peer.close()]);
  }
});

shared(
  'the stream lost from Redis is rebuilt from the live document on the next append',
  async ({ keys }) => {
    const hub = redisHub(keys);
    const raw = connect();
    try {
      const id = sessionId();
      const live = new Y.Doc();
      live.getText('t').insert(0, 'held only in memory');
      await hub.subscribe(
        id,
        () => {},
        async () => Y.encodeStateAsUpdate(live),
      );
      await hub.append(id, { kind: 'update', update: update('first') });
      await raw.del(keys.updates(id)); // what FLUSHDB does to this session
      await hub.append(id, { kind: 'update', update: update('second') });
      const entries = await raw.xrangeBuffer(keys.updates(id), '-', '+');
      assert.equal(entries.length, 2, 'snapshot then the update');
      const rebuilt = new Y.Doc();
      for (const [, fields] of entries)
        Y.applyUpdate(rebuilt, new Uint8Array(fields[1]!.subarray(1)));
      assert.ok(rebuilt.getText('t').toString().includes('held only in memory'));
    } finally {
      await hub.close();
    }
  },
);

const compaction = suite<{ db?: TestDatabase; keys: RedisKeys }>('compactor', {
  keys: redisKeys(`${prefix}compact:`),
});
setUp(compaction, async (ctx) => {
  ctx.db = await createTestDatabase();
  await migrate(ctx.db.sql, logger);
});
compaction.after(async (ctx) => {
  await ctx.db?.drop();
  await deleteRedisKeys(`${prefix}compact:`);
  for (const c of connections.splice(0)) c.disconnect();
});

/** A compactor as an instance runs one, trimming merged entries at once unless told. */
function compactorFor(
  keys: RedisKeys,
  drafts: DraftStore,
  folder: DraftFolder,
  offload: YjsOffload,
  opts: { redis?: Redis; minLifetimeMs?: number } = {},
): Compactor {
  return new Compactor({
    redis: opts.redis ?? connect(),
    keys,
    drafts,
    folder,
    offload,
    logger,
    intervalMs: 1_000,
    delayMs: 1_000,
    minLifetimeMs: opts.minLifetimeMs ?? 0,
    keyExpiryMs: 60_000,
  });
}

/** An empty draft, and a device whose typing goes to the hub. */
async function typingSession(ctx: { db?: TestDatabase; keys: RedisKeys }) {
  const drafts = createDraftsRepository(ctx.db!.sql);
  const id = sessionId();
  await drafts.save({
    sessionId: id,
    formVersion: 'dz',
    state: Y.encodeStateAsUpdate(new Y.Doc()),
  });
  const hub = redisHub(ctx.keys);
  const device = new Y.Doc();
  const type = async (word: string) => {
    const before = Y.encodeStateVector(device);
    device.getText('t').insert(device.getText('t').length, word);
    await hub.append(id, { kind: 'update', update: Y.encodeStateAsUpdate(device, before) });
  };
  return { drafts, id, hub, type };
}

compaction(
  'two instances compacting one session at once: one wins, the draft is complete',
  async (ctx) => {
    const drafts = createDraftsRepository(ctx.db!.sql);
    const id = sessionId();
    const initial = new Y.Doc();
    initial.getText('t').insert(0, 'draft ');
    await drafts.save({ sessionId: id, formVersion: 'dz', state: Y.encodeStateAsUpdate(initial) });
    const hub = redisHub(ctx.keys);
    const device = new Y.Doc();
    Y.applyUpdate(device, Y.encodeStateAsUpdate(initial));
    device.on('update', (u: Uint8Array) => void hub.append(id, { kind: 'update', update: u }));
    for (const word of ['one ', 'two ', 'three'])
      device.getText('t').insert(device.getText('t').length, word);
    await new Promise((r) => setTimeout(r, 50));
    const offload = createYjsOffload();
    const folder = new DraftFolder({ drafts, offload, logger });
    const [c1, c2] = [
      compactorFor(ctx.keys, drafts, folder, offload),
      compactorFor(ctx.keys, drafts, folder, offload),
    ];
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 ? c1 : c2).compact(id)),
    );
    assert.equal(results.filter((r) => r === 'compacted').length, 1, JSON.stringify(results));
    const draft = (await drafts.load(id)) as StoredDraft;
    assert.is(draft.updates.length, 1, 'the entries were appended to the draft as one update');
    const doc = new Y.Doc();
    for (const part of [draft.state, ...draft.updates]) Y.applyUpdate(doc, part);
    assert.equal(doc.getText('t').toString(), 'draft one two three');
    assert.equal(await connect().xlen(ctx.keys.updates(id)), 0, 'merged entries were trimmed');
    const lastIdTtl = await connect().pttl(ctx.keys.lastId(id));
    assert.ok(lastIdTtl > 0, `the last-id key expires with the stream (${lastIdTtl})`);
    await Promise.all([hub.close(), folder.close(), offload.close()]);
  },
);

compaction(
  'an update skips the compaction index until a compaction moves the session, then puts it back',
  async (ctx) => {
    const { drafts, id, hub, type } = await typingSession(ctx);
    const unsubscribe = await hub.subscribe(id, () => {});
    const redis = connect();
    const due = async () => redis.zscore(ctx.keys.compactionIndex, id);

    await type('one ');
    const first = Number(await due());
    assert.ok(Math.abs(first - (Date.now() + 1_000)) < 1_000, `due one delay after: ${first}`);
    // Moved without the epoch changing (nothing the compactor does): the next update does not
    // touch the index, so it is not written per update.
    await redis.zadd(ctx.keys.compactionIndex, 'XX', 9e12, id);
    await type('two ');
    assert.is(Number(await due()), 9e12, 'no ZADD while the epoch stands');

    const offload = createYjsOffload();
    const folder = new DraftFolder({ drafts, offload, logger });
    const compactor = compactorFor(ctx.keys, drafts, folder, offload);
    assert.is(await compactor.compact(id), 'compacted');
    assert.is(await due(), null, 'an emptied stream leaves the index');
    assert.ok((await redis.pttl(ctx.keys.indexEpoch(id))) > 0, 'the epoch expires with the stream');
    await type('three');
    const back = Number(await due());
    assert.ok(Math.abs(back - (Date.now() + 1_000)) < 1_000, `back in the index: ${back}`);
    assert.is(await compactor.compact(id), 'compacted');
    const draft = (await drafts.load(id)) as StoredDraft;
    const doc = new Y.Doc();
    for (const part of [draft.state, ...draft.updates]) Y.applyUpdate(doc, part);
    assert.is(doc.getText('t').toString(), 'one two three');
    unsubscribe();
    await Promise.all([hub.close(), folder.close(), offload.close()]);
  },
);

compaction(
  'a compaction is four Redis commands in three round trips; entries younger than the lifetime stay until a later one',
  async (ctx) => {
    const { drafts, id, hub, type } = await typingSession(ctx);
    const redis = connect();
    // Scripts missing from Redis (a restart, SCRIPT FLUSH) are sent in full, in a pipeline too.
    await redis.script('FLUSH');
    const offload = createYjsOffload();
    const folder = new DraftFolder({ drafts, offload, logger });
    const compactor = compactorFor(ctx.keys, drafts, folder, offload, {
      redis,
      minLifetimeMs: 400,
    });
    const sent: string[] = [];
    const send = redis.sendCommand.bind(redis);
    redis.sendCommand = ((command: { name: string }, stream?: unknown) => {
      sent.push(command.name.toLowerCase());
      return send(command as never, stream as never);
    }) as typeof redis.sendCommand;

    await type('one ');
    await type('two ');
    assert.is(await compactor.compact(id), 'compacted');
    assert.is(await redis.xlen(ctx.keys.updates(id)), 2, 'merged, but younger than the lifetime');
    const due = Number(await redis.zscore(ctx.keys.compactionIndex, id));
    assert.ok(due > Date.now(), 'due again when the oldest entry may be trimmed');
    assert.is(await redis.get(ctx.keys.compactionLease(id)), null, 'the lease is released');

    sent.length = 0;
    await new Promise((r) => setTimeout(r, 450));
    await type('three');
    assert.is(await compactor.compact(id), 'compacted');
    // EVALSHA begin, EVALSHA end, ZADD + EVALSHA check pipelined (the check found nothing
    // newer: no ZADD LT). The counting wrapper sees the commands after this point.
    assert.equal(
      sent.filter((c) => !['xlen', 'zscore', 'get'].includes(c)),
      ['evalsha', 'evalsha', 'zadd', 'evalsha'],
      sent.join(' '),
    );
    assert.is(await redis.xlen(ctx.keys.updates(id)), 1, 'the two old entries were trimmed');
    const draft = (await drafts.load(id)) as StoredDraft;
    const doc = new Y.Doc();
    for (const part of [draft.state, ...draft.updates]) Y.applyUpdate(doc, part);
    assert.is(doc.getText('t').toString(), 'one two three');
    await Promise.all([hub.close(), folder.close(), offload.close()]);
  },
);

shared.run();
compaction.run();
