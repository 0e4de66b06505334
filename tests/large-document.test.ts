/**
 * A large document (a 1.7 MB sketch) takes a burst of edits, and the server process is killed
 * (SIGKILL) right after: a fresh device connecting to a new process must get every edit that
 * was acknowledged. Drafts are stored incrementally (appended updates, folded into the base in
 * the background), so the kill may land between an append and a fold, or in a fold.
 *
 * - PostgreSQL + Redis: an edit is acknowledged once it reached the other device (it went
 *   through the Redis stream first). Compaction runs every 200 ms, so the stream is being
 *   appended to the draft, and the draft folded, while the edits arrive.
 * - In-process hub on PostgreSQL: an edit is acknowledged once the draft holds it (saved
 *   50 ms after a change); the test reads the draft to know, then kills at once. The edits
 *   come in groups, one save each, so the draft collects enough appended updates to be
 *   folded while the burst goes on (on a worker thread with a connection of its own: the kill
 *   may land in it). The fresh device must hold every point of the burst.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import * as Y from 'yjs';
import {
  spawnServer,
  openPair,
  deleteRedisKeys,
  REDIS_URL,
  type ServerProcess,
} from './support/server.js';
import { connectDevice, waitFor, type Device, connectBoth } from './support/device.js';
import { createTestDatabase, type TestDatabase } from '../persistence/test-database.js';
import { createDraftsRepository } from '../persistence/drafts-repository.js';
import { materialise } from '../constat/constat-doc.js';
import { canonicalJson } from '../constat/canonical-json.js';
import { growSketch } from '../scripts/sim/content.js';
import { FOLD_ROWS } from '../sync/draft-folder.js';
import { eventually } from './support/signing.js';

interface Ctx {
  dataDir: string;
  db?: TestDatabase;
  prefix: string;
  servers: ServerProcess[];
  devices: Device[];
}

const test = suite<Ctx>('large document killed mid-burst', {
  dataDir: '',
  prefix: '',
  servers: [],
  devices: [],
});

const LARGE = 1_700_000;
const BURST = 300;

test.before(async (ctx) => {
  ctx.dataDir = await mkdtemp(path.join(os.tmpdir(), 'constat-large-'));
  ctx.prefix = `constat-test:large-${process.pid}:`;
});

test.after.each(async (ctx) => {
  for (const d of ctx.devices.splice(0)) d.destroy();
  for (const s of ctx.servers.splice(0)) await s.kill('SIGKILL');
  await ctx.db?.drop();
  ctx.db = undefined;
});

test.after(async (ctx) => {
  await rm(ctx.dataDir, { recursive: true, force: true });
  await deleteRedisKeys(ctx.prefix);
});

const content = (doc: Y.Doc) => canonicalJson(materialise(doc));

const sameVector = (a: Y.Doc, b: Y.Doc) =>
  Buffer.from(Y.encodeStateVector(a)).equals(Buffer.from(Y.encodeStateVector(b)));

/** Opens a session and fills A's sketch to 1.7 MB, received by B. */
async function largeSession(ctx: Ctx, server: ServerProcess) {
  const pair = await openPair(server.url);
  const { a, b } = await connectBoth(server, pair, ctx.devices);
  const size = await growSketch(a.doc, LARGE, () => new Promise((r) => setTimeout(r, 20)));
  assert.ok(size >= LARGE, `the document is large (${size} bytes)`);
  await waitFor(() => sameVector(a.doc, b.doc), 60_000, 'the large document did not reach B');
  return { pair, a, b };
}

/** One burst edit: a point on a stroke of its own, the way a finger adds them. */
function strokeOf(doc: Y.Doc): Y.Array<number> {
  const elements = doc.getMap('sketch').get('elements') as Y.Map<unknown>;
  let stroke = elements.get('burst') as Y.Array<number> | undefined;
  if (!stroke) {
    stroke = new Y.Array<number>();
    elements.set('burst', stroke);
  }
  return stroke;
}

/** Kills the server, lets a fresh device (empty document) load the session from a new one. */
async function freshCopyAfterKill(
  ctx: Ctx,
  server: ServerProcess,
  env: Record<string, string>,
  sessionId: string,
  token: string,
): Promise<Y.Doc> {
  await server.kill('SIGKILL');
  // The old devices go too: what they hold must not reach the new process.
  for (const d of ctx.devices.splice(0)) d.destroy();
  const second = await spawnServer(env);
  ctx.servers.push(second);
  const fresh = connectDevice(second.wsUrl, sessionId, token, { doc: new Y.Doc() });
  ctx.devices.push(fresh);
  await fresh.synced(60_000);
  return fresh.doc;
}

const limits = { MAX_MESSAGES_PER_SECOND: '10000', MAX_MESSAGE_BURST: '10000' };

test('PostgreSQL + Redis: every edit that reached the other device survives SIGKILL', async (ctx) => {
  ctx.db = await createTestDatabase();
  const env = {
    DATA_DIR: ctx.dataDir,
    DATABASE_URL: ctx.db.url,
    REDIS_URL,
    REDIS_KEY_PREFIX: ctx.prefix,
    COMPACTION_INTERVAL_MS: '200',
    HUB_MIN_MESSAGE_LIFETIME_MS: '500',
    ...limits,
  };
  const server = await spawnServer(env);
  ctx.servers.push(server);
  const { pair, a, b } = await largeSession(ctx, server);

  const stroke = strokeOf(a.doc);
  for (let i = 0; i < BURST; i++) stroke.push([i, i % 97]);
  await waitFor(() => sameVector(a.doc, b.doc), 30_000, 'the burst did not reach B');
  const acknowledged = content(b.doc);

  const fresh = await freshCopyAfterKill(ctx, server, env, pair.sessionId, pair.tokenA);
  await waitFor(() => content(fresh) === acknowledged, 30_000, 'acknowledged edits were lost');
  assert.is(strokeOf(fresh).length, BURST * 2);
});

test('in-process hub: every edit the draft holds survives SIGKILL mid-fold', async (ctx) => {
  ctx.db = await createTestDatabase();
  const env = {
    DATA_DIR: ctx.dataDir,
    DATABASE_URL: ctx.db.url,
    REDIS_URL: '',
    DRAFT_SAVE_DEBOUNCE_MS: '50',
    ...limits,
  };
  const server = await spawnServer(env);
  ctx.servers.push(server);
  const { pair, a } = await largeSession(ctx, server);

  const sql = postgres(ctx.db.url, { max: 1, onnotice: () => {} });
  try {
    const drafts = createDraftsRepository(sql);
    /** The draft as stored: its base with every appended update. */
    const stored = async () => {
      const draft = (await drafts.load(pair.sessionId))!;
      const doc = new Y.Doc();
      for (const part of [draft.state, ...draft.updates]) Y.applyUpdate(doc, part);
      return { doc };
    };
    // Groups of edits, each saved on its own: enough appended updates for a fold to start.
    const stroke = strokeOf(a.doc);
    const groups = FOLD_ROWS + 4;
    const perGroup = BURST / 60;
    for (let group = 0; group < groups; group++) {
      for (let i = 0; i < perGroup; i++) stroke.push([group, i]);
      await new Promise((r) => setTimeout(r, 80));
    }
    // Polled every 20 ms; each read loads the 1.7 MB draft, so the kill lands within a
    // read or so of the save that completed it, while a fold may still be under way.
    const saved = await eventually(
      async () => {
        const s = await stored();
        return sameVector(s.doc, a.doc) ? s.doc : undefined;
      },
      30_000,
      'the draft never held the burst',
    );
    const acknowledged = content(saved);
    assert.equal(acknowledged, content(a.doc));

    const fresh = await freshCopyAfterKill(ctx, server, env, pair.sessionId, pair.tokenA);
    await waitFor(() => content(fresh) === acknowledged, 30_000, 'saved edits were lost');
    assert.is(strokeOf(fresh).length, groups * perGroup * 2, 'every point of the burst');
    // The draft is still whole after the kill, folded or not.
    assert.equal(content((await stored()).doc), acknowledged);
  } finally {
    await sql.end({ timeout: 5 });
  }
});

test.run();
