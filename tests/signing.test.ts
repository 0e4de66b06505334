/**
 * Signing and finalization, end to end through GraphQL and two stock y-websocket clients:
 * both drivers sign the server's copy, the server writes exactly one constat with one outbox
 * event per topic, and every refusal carries its contract code. The content hash and the
 * signatures are re-checked here with code of the test's own (RFC 8785 + SHA-256 + Ed25519),
 * the way an insurer would check them, never with the server's canonicaliser.
 *
 * The whole flow runs on PostgreSQL + Redis and on the embedded defaults (PGlite, in-process
 * hub; rows are then checked through GraphQL, PGlite taking a single connection). The rest
 * runs on PostgreSQL + Redis, where the tables are read with a client of the test's own.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes, randomUUID } from 'node:crypto';
import postgres from 'postgres';
import * as Y from 'yjs';
import {
  startTestServer,
  openPair,
  gql,
  token,
  OPEN_SESSION,
  type TestServer,
  type TestServerOptions,
  type Pair,
} from './support/server.js';
import { connectDevice, waitFor, type Device, connectBoth } from './support/device.js';
import { typeText } from '../client/writer.js';
import type { JsonObject } from '../constat/canonical-json.js';
import { completeVehicle } from './fixtures/constat.js';
import {
  ABANDON_SESSION,
  REGISTER_DEVICE,
  errorCode,
  eventually,
  fillConstat,
  newDeviceKey,
  registerKey,
  sessionView,
  signConstat,
  signHash,
  signingMessage,
  signText,
  sleep,
  verifySignature,
  type DeviceKey,
  type Role,
  type SessionView,
} from './support/signing.js';
import { setUp } from './support/suite.js';
import { createDraftsRepository } from '../persistence/drafts-repository.js';
import { jcs, sha256hex } from './support/jcs.js';
import { SORTING_EXAMPLE } from './fixtures/rfc8785.js';

/** The canonical content of a device's copy, straight from its Yjs roots. */
function contentOf(doc: Y.Doc): Record<string, unknown> {
  return Object.fromEntries(
    (['accident', 'vehicleA', 'vehicleB', 'sketch'] as const).map((root) => [
      root,
      doc.getMap(root).toJSON(),
    ]),
  );
}

const canonical = (d: Device | Y.Doc) => jcs(contentOf(d instanceof Y.Doc ? d : d.doc));
const deviceHash = (d: Device | Y.Doc) => sha256hex(canonical(d));
const sameContent = (a: Device, b: Device) => canonical(a) === canonical(b);

/** Content hash of a stored Yjs state (a draft or a constat snapshot). */
function stateHash(state: Uint8Array): string {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, state);
  const hash = deviceHash(doc);
  doc.destroy();
  return hash;
}

// ---------------------------------------------------------------------------------------------

const CONTRACT_CODES = [
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'BAD_USER_INPUT',
  'CONFLICT',
  'RATE_LIMITED',
];

interface Ctx {
  server: TestServer;
  sql?: postgres.Sql;
  devices: Device[];
}

interface Ready {
  tag: string;
  pair: Pair;
  sessionId: string;
  a: Device;
  b: Device;
  keys: Record<Role, DeviceKey>;
  tokens: Record<Role, string>;
  hash: string;
}

function device(ctx: Ctx, pair: Pair, role: Role, opts: { doc?: Y.Doc } = {}): Device {
  const d = connectDevice(
    ctx.server.wsUrl,
    pair.sessionId,
    role === 'A' ? pair.tokenA : pair.tokenB,
    opts,
  );
  ctx.devices.push(d);
  return d;
}

/** A joined session, both devices connected, the form complete, both keys registered. */
async function readyPair(
  ctx: Ctx,
  opts: { vehicleB?: JsonObject; register?: Role[] } = {},
): Promise<Ready> {
  const tag = randomBytes(4).toString('hex');
  const pair = await openPair(ctx.server.url, tag);
  const a = device(ctx, pair, 'A');
  const b = device(ctx, pair, 'B');
  await Promise.all([a.synced(), b.synced()]);
  await fillConstat(a, b, sameContent, opts.vehicleB ? { vehicleB: opts.vehicleB } : {});
  const keys = { A: newDeviceKey(), B: newDeviceKey() };
  const tokens = { A: pair.tokenA, B: pair.tokenB };
  for (const role of opts.register ?? (['A', 'B'] as const)) {
    await registerKey(ctx.server.url, tokens[role], keys[role]);
  }
  return { tag, pair, sessionId: pair.sessionId, a, b, keys, tokens, hash: deviceHash(a) };
}

async function sign(ctx: Ctx, s: Ready, role: Role, hash = s.hash) {
  return signConstat(
    ctx.server.url,
    s.tokens[role],
    s.sessionId,
    hash,
    signHash(s.keys[role], s.sessionId, role, hash),
  );
}

function assertSigned(res: Awaited<ReturnType<typeof sign>>, status: string): SessionView {
  assert.not.ok(res.errors, `signConstat failed: ${JSON.stringify(res.errors)}`);
  const view = res.data!.signConstat;
  assert.is(view.status, status);
  return view;
}

/** Both sign the current content; resolves with the constat id once both devices know it. */
async function signBoth(ctx: Ctx, s: Ready): Promise<string> {
  assertSigned(await sign(ctx, s, 'A'), 'ACTIVE');
  const view = assertSigned(await sign(ctx, s, 'B'), 'FINALIZED');
  assert.ok(view.constatId, 'signConstat by the second signer names the constat');
  await waitFor(
    () => [s.a, s.b].every((d) => d.closes.length > 0),
    10_000,
    'devices were not closed after finalization',
  );
  return view.constatId!;
}

async function view(ctx: Ctx, s: Ready, role: Role = 'A'): Promise<SessionView> {
  const v = await sessionView(ctx.server.url, s.tokens[role], s.sessionId);
  assert.ok(v, 'a party can read its session');
  return v!;
}

/** A refusal left no trace: no signature on the document, no event, no constat. */
async function assertNothingSigned(ctx: Ctx, s: Ready): Promise<void> {
  await sleep(100); // an event sent by mistake would have arrived by now
  const v = await view(ctx, s);
  assert.is(v.status, 'ACTIVE');
  assert.equal(v.signatures, []);
  assert.is(v.constatId, null);
  for (const d of [s.a, s.b]) {
    assert.equal(
      d.events.filter((e) => e.type === 'signed' || e.type === 'finalized'),
      [],
      'no signed/finalized event after a refusal',
    );
    assert.equal(d.closes, []);
  }
  if (ctx.sql) {
    const rows = await ctx.sql`select id from constats where session_id = ${s.sessionId}`;
    assert.is(rows.length, 0, 'no constat row after a refusal');
  }
}

function assertRefused(
  res: { errors?: Array<{ extensions?: { code?: string } }> | undefined },
  code: string,
  what: string,
) {
  assert.ok(res.errors, `${what}: expected ${code}, the call succeeded`);
  assert.is(res.errors![0]!.extensions?.code, code, `${what}: ${JSON.stringify(res.errors)}`);
}

/** The stored draft: its status, and its document (the base with the updates appended since). */
async function draftRow(ctx: Ctx, sessionId: string) {
  const draft = await createDraftsRepository(ctx.sql!).load(sessionId);
  assert.ok(draft, 'the draft row is kept');
  return {
    status: draft!.status,
    state: Y.mergeUpdates([draft!.state, ...draft!.updates]),
    appended: draft!.updates.length,
  };
}

// ---------------------------------------------------------------------------------------------

const variants: Array<{ name: string; options: TestServerOptions; full: boolean }> = [
  { name: 'postgres+redis', options: { database: 'postgres', hub: 'redis' }, full: true },
  { name: 'embedded', options: { database: 'pglite', hub: 'memory' }, full: false },
];

for (const variant of variants) {
  const test = suite<Ctx>(`signing (${variant.name})`, { devices: [] } as unknown as Ctx);

  setUp(test, async (ctx) => {
    ctx.server = await startTestServer(variant.options);
    if (variant.options.database === 'postgres') {
      ctx.sql = postgres(ctx.server.databaseUrl!, { max: 3, onnotice: () => {} });
    }
  });
  test.after.each((ctx) => {
    for (const d of ctx.devices.splice(0)) d.destroy();
  });
  test.after(async (ctx) => {
    await ctx.sql?.end({ timeout: 5 });
    await ctx.server?.stop();
  });

  test('two devices fill, register, both sign: one constat, one outbox row per topic, devices told and closed', async (ctx) => {
    const s = await readyPair(ctx);
    assert.is(deviceHash(s.b), s.hash, 'both devices hold the same content');
    assert.is((await view(ctx, s)).contentHash, s.hash, "the server's copy has the devices' hash");

    const first = assertSigned(await sign(ctx, s, 'A'), 'ACTIVE');
    assert.equal(
      first.signatures.map((x) => [x.role, x.hash]),
      [['A', s.hash]],
    );
    await waitFor(
      () => [s.a, s.b].every((d) => d.events.some((e) => e.type === 'signed' && e.role === 'A')),
      5_000,
      'both devices are told A signed',
    );

    const second = assertSigned(await sign(ctx, s, 'B'), 'FINALIZED');
    const constatId = second.constatId;
    assert.ok(constatId && /^[0-9a-f-]{36}$/.test(constatId), `constat id: ${constatId}`);
    assert.equal(
      second.signatures.map((x) => x.role),
      ['A', 'B'],
    );

    await waitFor(
      () => [s.a, s.b].every((d) => d.closes.length > 0),
      10_000,
      'devices were not closed after finalization',
    );
    for (const [name, d] of [
      ['A', s.a],
      ['B', s.b],
    ] as const) {
      const types = d.events.map((e) => (e.type === 'signed' ? `signed:${e.role}` : e.type));
      const finalized = d.events.filter((e) => e.type === 'finalized');
      assert.is(finalized.length, 1, `device ${name} is told once: ${types}`);
      assert.is((finalized[0] as { constatId: string }).constatId, constatId);
      const at = types.indexOf('finalized');
      assert.ok(
        types.indexOf('signed:A') >= 0 && types.indexOf('signed:A') < at,
        `${name}: signed A before finalized (${types})`,
      );
      assert.ok(
        types.indexOf('signed:B') >= 0 && types.indexOf('signed:B') < at,
        `${name}: signed B before finalized (${types})`,
      );
      assert.not.ok(types.includes('signatures-voided'), `${name}: ${types}`);
      assert.is(d.closes[0]!.code, 4409, `device ${name} closed with 4409`);
    }

    for (const role of ['A', 'B'] as const) {
      const v = await view(ctx, s, role);
      assert.is(v.status, 'FINALIZED');
      assert.is(v.constatId, constatId);
    }

    if (ctx.sql) {
      const constats = await ctx.sql`select id from constats where session_id = ${s.sessionId}`;
      assert.equal(
        constats.map((r) => r.id),
        [constatId],
      );
      const outbox = await ctx.sql<{ topic: string }[]>`
        select topic from outbox where message_key = ${constatId!} order by topic
      `;
      assert.equal(
        outbox.map((r) => r.topic),
        ['constats', 'saa', 'trust'],
      );
      const [session] = await ctx.sql`select status from sessions where id = ${s.sessionId}`;
      assert.is(session!.status, 'finalized');
      assert.is((await draftRow(ctx, s.sessionId)).status, 'finalized');
    }
  });

  test('the content hash and the signatures verify with the test’s own JCS, SHA-256 and Ed25519', async (ctx) => {
    const s = await readyPair(ctx);
    const expectedCanonical = canonical(s.a);
    const constatId = await signBoth(ctx, s);
    const message = (role: Role) => signingMessage(s.sessionId, role, s.hash);

    // Through GraphQL (the only view on PGlite).
    const v = await view(ctx, s);
    assert.is(v.contentHash, s.hash);
    assert.is(v.signatures.length, 2);
    for (const sig of v.signatures) {
      assert.is(sig.hash, s.hash);
      assert.ok(
        verifySignature(s.keys[sig.role].publicKeyBase64, message(sig.role), sig.signature),
        `signature ${sig.role} verifies`,
      );
      assert.is(sig.deviceId, `device-${sig.role.toLowerCase()}-${s.tag}`);
      assert.is(sig.userId, `user-${sig.role.toLowerCase()}-${s.tag}`);
    }

    if (!ctx.sql) return;
    const [row] = await ctx.sql<
      {
        id: string;
        content_hash: string;
        canonical_json: string;
        content: unknown;
        signatures: Record<
          Role,
          { hash: string; signature: string; deviceId: string; userId: string; signedAt: string }
        >;
        snapshot: Uint8Array;
        party_a_user: string;
        party_b_user: string;
        insurer_a: string;
        insurer_b: string;
      }[]
    >`select * from constats where id = ${constatId}`;
    assert.ok(row);
    assert.is(row!.content_hash, s.hash, 'stored hash = hash recomputed from the device');
    assert.is(
      sha256hex(row!.canonical_json),
      row!.content_hash,
      'stored canonical JSON hashes to it',
    );
    assert.is(
      row!.canonical_json,
      expectedCanonical,
      'stored canonical JSON = our canonicalisation',
    );
    assert.is(
      jcs(row!.content),
      row!.canonical_json,
      'stored content canonicalises to the same text',
    );
    assert.is(
      stateHash(new Uint8Array(row!.snapshot)),
      s.hash,
      'the snapshot rebuilds the signed content',
    );
    assert.is(row!.party_a_user, `user-a-${s.tag}`);
    assert.is(row!.party_b_user, `user-b-${s.tag}`);
    assert.is(row!.insurer_a, 'saa');
    assert.is(row!.insurer_b, 'trust');

    const devices = await ctx.sql<{ device_id: string; public_key: Uint8Array }[]>`
      select device_id, public_key from devices
      where (user_id, device_id) in ((${`user-a-${s.tag}`}, ${`device-a-${s.tag}`}), (${`user-b-${s.tag}`}, ${`device-b-${s.tag}`}))
    `;
    const keyOf = (deviceId: string) =>
      Buffer.from(devices.find((d) => d.device_id === deviceId)!.public_key).toString('base64');
    for (const role of ['A', 'B'] as const) {
      const sig = row!.signatures[role];
      assert.is(sig.hash, s.hash);
      assert.is(
        keyOf(sig.deviceId),
        s.keys[role].publicKeyBase64,
        'the devices table holds the key',
      );
      assert.ok(
        verifySignature(keyOf(sig.deviceId), message(role), sig.signature),
        `stored ${role} verifies`,
      );
      assert.not.ok(
        verifySignature(keyOf(sig.deviceId), message(role === 'A' ? 'B' : 'A'), sig.signature),
        'a signature does not verify for the other role',
      );
    }

    // The event insurers receive carries everything needed to check it without us.
    const outbox = await ctx.sql<
      { topic: string; message_key: string; payload: any; headers: any }[]
    >`
      select topic, message_key, payload, headers from outbox where message_key = ${constatId} order by topic
    `;
    assert.is(outbox.length, 3);
    assert.is(new Set(outbox.map((o) => o.payload.id)).size, 1, 'one event id on every topic');
    for (const o of outbox) {
      const event = o.payload;
      assert.is(event.specversion, '1.0');
      assert.is(event.type, 'dz.constat.finalized.v1');
      assert.is(event.source, 'constat-core');
      assert.is(event.subject, constatId);
      assert.is(o.headers.ce_type, 'dz.constat.finalized.v1');
      assert.is(event.data.contentHash, s.hash);
      assert.is(
        sha256hex(jcs(event.data.content)),
        s.hash,
        `${o.topic}: data.content hashes to data.contentHash`,
      );
      assert.equal(
        event.data.signatures.map((x: { role: string }) => x.role),
        ['A', 'B'],
      );
      for (const sig of event.data.signatures as SessionView['signatures']) {
        assert.is(sig.hash, s.hash);
        assert.ok(sig.signedAt && sig.userId && sig.deviceId);
        assert.ok(verifySignature(keyOf(sig.deviceId), message(sig.role), sig.signature));
      }
    }
  });

  if (!variant.full) {
    test.run();
    continue;
  }

  test('both parties with the same insurer: one message for that topic plus constats', async (ctx) => {
    const s = await readyPair(ctx, {
      vehicleB: completeVehicle('B', {
        insurer: { company: 'saa', policyNumber: 'SAA-31-2025-777' },
      }),
    });
    const constatId = await signBoth(ctx, s);
    const outbox = await ctx.sql!<{ topic: string }[]>`
      select topic from outbox where message_key = ${constatId} order by topic
    `;
    assert.equal(
      outbox.map((r) => r.topic),
      ['constats', 'saa'],
    );
  });

  test('a stale hash is refused with CONFLICT and the current hash', async (ctx) => {
    const s = await readyPair(ctx);
    const stale = s.hash;
    typeText(s.b.doc, 'vehicleB', ['remarks'], ' Modifié.');
    await waitFor(() => sameContent(s.a, s.b) && deviceHash(s.a) !== stale);
    const current = deviceHash(s.a);
    const res = await sign(ctx, s, 'A', stale);
    assertRefused(res, 'CONFLICT', 'stale hash');
    assert.is(res.errors![0]!.extensions!.currentHash, current);
    await assertNothingSigned(ctx, s);
  });

  test('forged signatures are refused with FORBIDDEN', async (ctx) => {
    const s = await readyPair(ctx);
    const other = newDeviceKey();
    const forgeries: Array<[string, Role, string]> = [
      ['signed by another key', 'A', signHash(other, s.sessionId, 'A', s.hash)],
      ['over the message of the other role', 'A', signHash(s.keys.A, s.sessionId, 'B', s.hash)],
      ['over the message of another session', 'A', signHash(s.keys.A, randomUUID(), 'A', s.hash)],
      ['over another hash', 'A', signHash(s.keys.A, s.sessionId, 'A', '0'.repeat(64))],
      ['over the bare hash', 'A', signText(s.keys.A, s.hash)],
      ["B replaying A's signature", 'B', signHash(s.keys.A, s.sessionId, 'A', s.hash)],
      ['64 zero bytes', 'B', Buffer.alloc(64).toString('base64')],
    ];
    for (const [what, role, signature] of forgeries) {
      const res = await signConstat(ctx.server.url, s.tokens[role], s.sessionId, s.hash, signature);
      assertRefused(res, 'FORBIDDEN', what);
    }
    await assertNothingSigned(ctx, s);
  });

  test("neither another device of B's user nor a stranger may sign", async (ctx) => {
    const s = await readyPair(ctx);
    const intruders = [
      ["B's user on another device", await token(`user-b-${s.tag}`, `device-b2-${s.tag}`)],
      ['a stranger', await token(`stranger-${s.tag}`, `device-x-${s.tag}`)],
    ] as const;
    for (const [what, bearer] of intruders) {
      const key = newDeviceKey();
      await registerKey(ctx.server.url, bearer, key);
      for (const role of ['A', 'B'] as const) {
        const res = await signConstat(
          ctx.server.url,
          bearer,
          s.sessionId,
          s.hash,
          signHash(key, s.sessionId, role, s.hash),
        );
        // What the code does: the session exists, the device is not one of its two parties.
        assertRefused(res, 'FORBIDDEN', `${what} signing as ${role}`);
      }
    }
    await assertNothingSigned(ctx, s);
  });

  test('a device without a registered key is refused with FORBIDDEN', async (ctx) => {
    const s = await readyPair(ctx, { register: ['A'] });
    const res = await sign(ctx, s, 'B');
    assertRefused(res, 'FORBIDDEN', 'unregistered device');
    await assertNothingSigned(ctx, s);
  });

  test('incomplete content is refused with BAD_USER_INPUT and the field errors', async (ctx) => {
    const s = await readyPair(ctx, {
      vehicleB: completeVehicle('B', { vehicle: { plate: null } }),
    });
    assert.is((await view(ctx, s)).contentHash, s.hash);
    const res = await sign(ctx, s, 'A');
    assertRefused(res, 'BAD_USER_INPUT', 'missing plate');
    const fieldErrors = res.errors![0]!.extensions!.fieldErrors as Array<{
      path: string;
      code: string;
    }>;
    assert.ok(Array.isArray(fieldErrors), JSON.stringify(res.errors));
    assert.ok(
      fieldErrors.some((e) => e.path === 'vehicleB.vehicle.plate' && e.code === 'required'),
      JSON.stringify(fieldErrors),
    );
    await assertNothingSigned(ctx, s);
  });

  test('a malformed hash or signature is refused with BAD_USER_INPUT', async (ctx) => {
    const s = await readyPair(ctx);
    const good = signHash(s.keys.A, s.sessionId, 'A', s.hash);
    const cases: Array<[string, string, string, string]> = [
      ['short hash', 'abc', good, 'contentHash'],
      ['upper-case hash', s.hash.toUpperCase(), good, 'contentHash'],
      ['hash of 65 digits', `${s.hash}0`, good, 'contentHash'],
      ['hash that is not hex', 'g'.repeat(64), good, 'contentHash'],
      ['empty signature', s.hash, '', 'signature'],
      ['signature that is not base64', s.hash, 'not base64!', 'signature'],
      ['signature of 63 bytes', s.hash, Buffer.alloc(63, 1).toString('base64'), 'signature'],
      ['signature of 65 bytes', s.hash, Buffer.alloc(65, 1).toString('base64'), 'signature'],
    ];
    for (const [what, hash, signature, field] of cases) {
      const res = await signConstat(ctx.server.url, s.tokens.A, s.sessionId, hash, signature);
      assertRefused(res, 'BAD_USER_INPUT', what);
      assert.is(res.errors![0]!.extensions!.field, field, what);
    }
    await assertNothingSigned(ctx, s);
  });

  test('signing before party B has joined is refused with CONFLICT', async (ctx) => {
    const tag = randomBytes(4).toString('hex');
    const tokenA = await token(`user-a-${tag}`, `device-a-${tag}`);
    const opened = await gql(ctx.server.url, tokenA, OPEN_SESSION, { formVersion: 'dz' });
    assert.not.ok(opened.errors);
    const sessionId = opened.data!.openSession.session.id as string;
    const key = newDeviceKey();
    await registerKey(ctx.server.url, tokenA, key);
    const hash = sha256hex(jcs({ accident: {}, vehicleA: {}, vehicleB: {}, sketch: {} }));
    const res = await signConstat(
      ctx.server.url,
      tokenA,
      sessionId,
      hash,
      signHash(key, sessionId, 'A', hash),
    );
    assertRefused(res, 'CONFLICT', 'B not joined');
    const v = await sessionView(ctx.server.url, tokenA, sessionId);
    assert.is(v!.status, 'WAITING');
    assert.equal(v!.signatures, []);
  });

  test('registerDevice refuses a key that is not 32 bytes of base64', async (ctx) => {
    const bearer = await token(`user-k-${randomBytes(3).toString('hex')}`, 'device-k');
    const bad: Array<[string, string]> = [
      ['31 bytes', Buffer.alloc(31, 7).toString('base64')],
      ['33 bytes', Buffer.alloc(33, 7).toString('base64')],
      ['64 bytes (a private key?)', Buffer.alloc(64, 7).toString('base64')],
      ['not base64', 'not a key!'],
      ['empty', ''],
    ];
    for (const [what, publicKey] of bad) {
      const res = await gql(ctx.server.url, bearer, REGISTER_DEVICE, { publicKey });
      assertRefused(res, 'BAD_USER_INPUT', what);
      assert.is(res.errors![0]!.extensions!.field, 'publicKey', what);
    }
  });

  test("re-registering replaces the key: the old key's signatures are then refused", async (ctx) => {
    const s = await readyPair(ctx);
    const firstRes = await gql(ctx.server.url, s.tokens.A, REGISTER_DEVICE, {
      publicKey: s.keys.A.publicKeyBase64,
    });
    const first = firstRes.data!.registerDevice as { registeredAt: string; updatedAt: string };
    const old = s.keys.A;
    const replacement = newDeviceKey();
    await sleep(5);
    const res = await gql(ctx.server.url, s.tokens.A, REGISTER_DEVICE, {
      publicKey: replacement.publicKeyBase64,
    });
    assert.not.ok(res.errors, JSON.stringify(res.errors));
    const registered = res.data!.registerDevice as {
      publicKey: string;
      deviceId: string;
      registeredAt: string;
      updatedAt: string;
    };
    assert.is(registered.publicKey, replacement.publicKeyBase64);
    assert.is(registered.deviceId, `device-a-${s.tag}`);
    assert.is(registered.registeredAt, first.registeredAt, 'registration time is kept');
    assert.ok(registered.updatedAt > first.updatedAt, 'update time moves');

    const withOld = await signConstat(
      ctx.server.url,
      s.tokens.A,
      s.sessionId,
      s.hash,
      signHash(old, s.sessionId, 'A', s.hash),
    );
    assertRefused(withOld, 'FORBIDDEN', 'signature by the replaced key');
    await assertNothingSigned(ctx, s);

    s.keys.A = replacement;
    const ok = assertSigned(await sign(ctx, s, 'A'), 'ACTIVE');
    assert.equal(
      ok.signatures.map((x) => x.role),
      ['A'],
    );
  });

  test('a key replaced after signing: every signature an insurer receives verifies with a key on record', async (ctx) => {
    const s = await readyPair(ctx);
    assertSigned(await sign(ctx, s, 'A'), 'ACTIVE');
    // A's phone is reinstalled and registers a new key while its signature is on the document.
    const replacement = newDeviceKey();
    const registered = await gql(ctx.server.url, s.tokens.A, REGISTER_DEVICE, {
      publicKey: replacement.publicKeyBase64,
    });
    // A server may also refuse to replace a key while a signature made with it is pending.
    if (errorCode(registered) === 'CONFLICT') return;
    assert.not.ok(registered.errors, JSON.stringify(registered.errors));
    const res = await sign(ctx, s, 'B');
    assert.not.ok(res.errors, JSON.stringify(res.errors));
    let constatId = res.data!.signConstat.constatId;
    if (!constatId) {
      // A server that voids signatures made with a replaced key: A signs again with the new one.
      s.keys.A = replacement;
      constatId = assertSigned(await sign(ctx, s, 'A'), 'FINALIZED').constatId;
    }
    const [event] = await ctx.sql!<{ payload: any }[]>`
      select payload from outbox where message_key = ${constatId!} and topic = 'constats'
    `;
    for (const sig of event!.payload.data.signatures as Array<
      SessionView['signatures'][number] & { publicKey?: string }
    >) {
      const [device] = await ctx.sql!<{ public_key: Uint8Array }[]>`
        select public_key from devices where user_id = ${sig.userId} and device_id = ${sig.deviceId}
      `;
      const key = sig.publicKey ?? Buffer.from(device!.public_key).toString('base64');
      assert.ok(
        verifySignature(key, signingMessage(s.sessionId, sig.role, sig.hash), sig.signature),
        `signature ${sig.role} verifies with ${sig.publicKey ? 'the key it carries' : 'the key the devices table holds'}`,
      );
    }
  });

  test('an edit after the first signature voids it; signing again finalizes', async (ctx) => {
    const s = await readyPair(ctx);
    assertSigned(await sign(ctx, s, 'A'), 'ACTIVE');
    await waitFor(() => s.b.events.some((e) => e.type === 'signed'), 5_000, 'B told A signed');

    typeText(s.b.doc, 'vehicleB', ['remarks'], ' Le feu était rouge.');
    await waitFor(
      () => [s.a, s.b].every((d) => d.events.some((e) => e.type === 'signatures-voided')),
      5_000,
      'both devices are told the signature is void',
    );
    await waitFor(() => sameContent(s.a, s.b));
    const v = await view(ctx, s, 'B');
    assert.equal(v.signatures, [], 'no signature left on the document');
    assert.is(v.status, 'ACTIVE');
    const newHash = deviceHash(s.a);
    assert.is.not(newHash, s.hash);
    assert.is(v.contentHash, newHash);

    // The old signature cannot be reused for the new content.
    const replay = await signConstat(
      ctx.server.url,
      s.tokens.A,
      s.sessionId,
      newHash,
      signHash(s.keys.A, s.sessionId, 'A', s.hash),
    );
    assertRefused(replay, 'FORBIDDEN', 'old signature over the new hash');

    s.hash = newHash;
    const constatId = await signBoth(ctx, s);
    for (const d of [s.a, s.b]) {
      assert.ok(d.events.some((e) => e.type === 'finalized' && e.constatId === constatId));
      assert.is(d.closes[0]!.code, 4409);
    }
    const [row] = await ctx.sql!`select content_hash from constats where id = ${constatId}`;
    assert.is(row!.content_hash, newHash);
  });

  test('a device connecting after finalization is closed with 4409 and changes nothing', async (ctx) => {
    const s = await readyPair(ctx);
    const constatId = await signBoth(ctx, s);

    // A's phone keeps editing offline, then reconnects with that document; B's user tries a
    // second device with an empty one.
    s.a.destroy();
    typeText(s.a.doc, 'vehicleA', ['remarks'], ' ajouté après la signature');
    assert.is.not(deviceHash(s.a.doc), s.hash);
    const late = device(ctx, s.pair, 'A', { doc: s.a.doc });
    const otherDevice = connectDevice(
      ctx.server.wsUrl,
      s.sessionId,
      await token(`user-b-${s.tag}`, `device-b2-${s.tag}`),
    );
    ctx.devices.push(otherDevice);
    const fresh = device(ctx, s.pair, 'B');
    await waitFor(
      () => [late, fresh, otherDevice].every((d) => d.closes.length > 0),
      5_000,
      'late devices were not closed',
    );
    assert.is(late.closes[0]!.code, 4409);
    assert.is(fresh.closes[0]!.code, 4409);
    // Not a party device: refused before the session's state is looked at.
    assert.ok(
      [4403, 4409].includes(otherDevice.closes[0]!.code),
      JSON.stringify(otherDevice.closes),
    );
    await sleep(300);

    const v = await view(ctx, s);
    assert.is(v.status, 'FINALIZED');
    assert.is(v.constatId, constatId);
    assert.is(v.contentHash, s.hash, "the server's copy is unchanged");
    const [row] =
      await ctx.sql!`select content_hash from constats where session_id = ${s.sessionId}`;
    assert.is(row!.content_hash, s.hash);
    const draft = await draftRow(ctx, s.sessionId);
    assert.is(draft.status, 'finalized');
    assert.is(draft.appended, 0, 'the signed state is the whole finalized draft');
    assert.is(
      stateHash(new Uint8Array(draft.state)),
      s.hash,
      'the stored draft is the signed content',
    );
  });

  test('signing again after finalization is refused with a contract code and writes nothing', async (ctx) => {
    const s = await readyPair(ctx);
    const constatId = await signBoth(ctx, s);
    const res = await sign(ctx, s, 'B');
    assert.ok(res.errors, 'a finalized session cannot be signed again');
    const code = errorCode(res);
    assert.ok(
      CONTRACT_CODES.includes(code!),
      `extensions.code ${code} is one of the contract's codes`,
    );
    assert.is(code, 'CONFLICT', 'as abandonSession answers for a finalized session');
    const rows = await ctx.sql!`select id from constats where session_id = ${s.sessionId}`;
    assert.equal(
      rows.map((r) => r.id),
      [constatId],
    );
    const outbox = await ctx.sql!`select 1 from outbox where message_key = ${constatId}`;
    assert.is(outbox.length, 3);
  });

  test('abandonSession by a party: ABANDONED, devices closed with 4404, draft kept with its content', async (ctx) => {
    const s = await readyPair(ctx);
    const expected = s.hash;
    const res = await gql(ctx.server.url, s.tokens.A, ABANDON_SESSION, { sessionId: s.sessionId });
    assert.not.ok(res.errors, JSON.stringify(res.errors));
    assert.is(res.data!.abandonSession.status, 'ABANDONED');
    await waitFor(
      () => [s.a, s.b].every((d) => d.closes.length > 0),
      5_000,
      'devices were not closed after abandon',
    );
    assert.is(s.a.closes[0]!.code, 4404);
    assert.is(s.b.closes[0]!.code, 4404);
    assert.is((await view(ctx, s, 'B')).status, 'ABANDONED');

    // Abandoning twice is harmless; signing an abandoned session is refused.
    const again = await gql(ctx.server.url, s.tokens.B, ABANDON_SESSION, {
      sessionId: s.sessionId,
    });
    assert.not.ok(again.errors, JSON.stringify(again.errors));
    assert.is(again.data!.abandonSession.status, 'ABANDONED');
    assertRefused(await sign(ctx, s, 'A'), 'NOT_FOUND', 'signing an abandoned session');

    await sleep(300); // let the unloading live document finish whatever it does with the draft
    const draft = await draftRow(ctx, s.sessionId);
    assert.is(draft.status, 'abandoned');
    assert.is(
      stateHash(new Uint8Array(draft.state)),
      expected,
      'the abandoned draft keeps the content',
    );
    const rows = await ctx.sql!`select 1 from constats where session_id = ${s.sessionId}`;
    assert.is(rows.length, 0);
  });

  test('abandonSession by a stranger is NOT_FOUND and changes nothing', async (ctx) => {
    const pair = await openPair(ctx.server.url);
    const stranger = await token(`stranger-${randomBytes(3).toString('hex')}`, 'device-x');
    const res = await gql(ctx.server.url, stranger, ABANDON_SESSION, { sessionId: pair.sessionId });
    assertRefused(res, 'NOT_FOUND', 'stranger abandoning');
    const unknown = await gql(ctx.server.url, stranger, ABANDON_SESSION, {
      sessionId: randomUUID(),
    });
    assertRefused(unknown, 'NOT_FOUND', 'unknown session');
    const v = await sessionView(ctx.server.url, pair.tokenA, pair.sessionId);
    assert.is(v!.status, 'ACTIVE');
    assert.is((await draftRow(ctx, pair.sessionId)).status, 'live');
  });

  test('abandoning a finalized session is a CONFLICT', async (ctx) => {
    const s = await readyPair(ctx);
    const constatId = await signBoth(ctx, s);
    const res = await gql(ctx.server.url, s.tokens.A, ABANDON_SESSION, { sessionId: s.sessionId });
    assertRefused(res, 'CONFLICT', 'abandoning a finalized session');
    const v = await view(ctx, s);
    assert.is(v.status, 'FINALIZED');
    assert.is(v.constatId, constatId);
    assert.is((await draftRow(ctx, s.sessionId)).status, 'finalized');
  });

  test('finalization latency (p50 of 10 runs): second signConstat → finalized event, → committed row', async (ctx) => {
    const runs: Array<{ response: number; event: number; row: number }> = [];
    const watcher = postgres(ctx.server.databaseUrl!, { max: 1, onnotice: () => {} });
    try {
      for (let i = 0; i < 10; i++) {
        const s = await readyPair(ctx);
        assertSigned(await sign(ctx, s, 'A'), 'ACTIVE');
        await waitFor(() => s.a.events.some((e) => e.type === 'signed'));
        let eventAt: number | undefined;
        const handler = s.a.provider.messageHandlers[100]!;
        s.a.provider.messageHandlers[100] = (...args) => {
          handler(...args);
          if (eventAt === undefined && s.a.events.some((e) => e.type === 'finalized'))
            eventAt = performance.now();
        };
        const signature = signHash(s.keys.B, s.sessionId, 'B', s.hash);
        const started = performance.now();
        let rowAt: number | undefined;
        const polling = (async () => {
          while (rowAt === undefined && performance.now() - started < 10_000) {
            const rows = await watcher`select 1 from constats where session_id = ${s.sessionId}`;
            if (rows.length > 0) rowAt = performance.now();
          }
        })();
        const res = await signConstat(ctx.server.url, s.tokens.B, s.sessionId, s.hash, signature);
        const respondedAt = performance.now();
        assertSigned(res, 'FINALIZED');
        await polling;
        await waitFor(() => eventAt !== undefined, 10_000, 'no finalized event');
        assert.ok(rowAt !== undefined, 'no committed row');
        runs.push({
          response: respondedAt - started,
          event: eventAt! - started,
          row: rowAt! - started,
        });
        for (const d of ctx.devices.splice(0)) d.destroy();
      }
    } finally {
      await watcher.end({ timeout: 5 });
    }
    const p50 = (k: 'response' | 'event' | 'row') => {
      const sorted = runs.map((r) => r[k]).sort((x, y) => x - y);
      return (sorted[4]! + sorted[5]!) / 2;
    };
    const range = (k: 'response' | 'event' | 'row') =>
      `${Math.min(...runs.map((r) => r[k])).toFixed(1)}–${Math.max(...runs.map((r) => r[k])).toFixed(1)}`;
    console.log(
      `finalization latency over ${runs.length} runs (ms): ` +
        `committed row p50 ${p50('row').toFixed(1)} [${range('row')}], ` +
        `finalized event p50 ${p50('event').toFixed(1)} [${range('event')}], ` +
        `signConstat response p50 ${p50('response').toFixed(1)} [${range('response')}]`,
    );
    assert.ok(p50('event') < 2_000, 'devices learn of the constat within 2 s');
  });

  test.run();
}

// ---------------------------------------------------------------------------------------------
// The test's canonicaliser itself, against the RFC's own examples.

const jcsSuite = suite('signing: the test canonicaliser');

jcsSuite('the test canonicaliser reproduces the RFC 8785 examples', () => {
  // RFC 8785 §3.2.3 (property sorting) and the numbers of §3.2.2.3 / appendix B.
  assert.is(jcs(SORTING_EXAMPLE.input), SORTING_EXAMPLE.canonical);
  assert.is(
    jcs({ numbers: [333333333.33333329, 1e30, 4.5, 2e-3, 0.000000000000000000000000001, -0] }),
    '{"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27,0]}',
  );
  assert.is(
    jcs({ s: '\u20ac$\u000F\u000aA\'\u0042\u0022\u005c\\"/' }),
    '{"s":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
  );
});

jcsSuite.run();

// ---------------------------------------------------------------------------------------------
// Expiry: a short session TTL and a fast sweep.

interface ExpiryCtx {
  server: TestServer;
  sql: postgres.Sql;
  devices: Device[];
}

const expiry = suite<ExpiryCtx>('signing: session expiry (postgres+redis)', {
  devices: [],
} as unknown as ExpiryCtx);

setUp(expiry, async (ctx) => {
  ctx.server = await startTestServer({
    database: 'postgres',
    hub: 'redis',
    env: { SESSION_TTL_MS: '600000', EXPIRY_SWEEP_MS: '200' },
  });
  ctx.sql = postgres(ctx.server.databaseUrl!, { max: 2, onnotice: () => {} });
});
expiry.after.each((ctx) => {
  for (const d of ctx.devices.splice(0)) d.destroy();
});
expiry.after(async (ctx) => {
  await ctx.sql?.end({ timeout: 5 });
  await ctx.server?.stop();
});

expiry(
  'an unfinished session expires: EXPIRED, devices closed with 4404, draft marked expired',
  async (ctx) => {
    const pair = await openPair(ctx.server.url);
    const { a, b } = await connectBoth(ctx.server, pair, ctx.devices);
    await fillConstat(a, b, sameContent);
    const expected = deviceHash(a);
    // The session's time runs out now, not after a fixed TTL that a loaded machine could
    // spend pairing and filling: the sweep finds it past its expiry at its next pass.
    await ctx.sql`
      update sessions
      set record = jsonb_set(record, '{expiresAt}', to_jsonb(now() - interval '1 second'))
      where id = ${pair.sessionId}
    `;

    const v = await eventually(
      async () => {
        const v = await sessionView(ctx.server.url, pair.tokenA, pair.sessionId);
        return v?.status === 'EXPIRED' ? v : undefined;
      },
      15_000,
      'the session never became EXPIRED',
    );
    assert.is(v.constatId, null);
    await waitFor(() => [a, b].every((d) => d.closes.length > 0), 5_000, 'devices not closed');
    assert.is(a.closes[0]!.code, 4404);
    assert.is(b.closes[0]!.code, 4404);

    // A device coming back is told the session is gone, and signing is refused.
    const late = connectDevice(ctx.server.wsUrl, pair.sessionId, pair.tokenB);
    ctx.devices.push(late);
    await waitFor(() => late.closes.length > 0, 5_000, 'late device not closed');
    assert.is(late.closes[0]!.code, 4404);
    const key = newDeviceKey();
    await registerKey(ctx.server.url, pair.tokenA, key);
    const res = await signConstat(
      ctx.server.url,
      pair.tokenA,
      pair.sessionId,
      expected,
      signHash(key, pair.sessionId, 'A', expected),
    );
    assertRefused(res, 'NOT_FOUND', 'signing an expired session');

    // The sweep closes the draft after storing what the live document holds; on a busy
    // machine that can finish after the session's own timer has let the devices go.
    const drafts = createDraftsRepository(ctx.sql);
    const draft = await eventually(
      async () => {
        const d = await drafts.load(pair.sessionId);
        return d?.status === 'expired' ? d : undefined;
      },
      10_000,
      'the draft was never marked expired',
    );
    assert.is(
      stateHash(Y.mergeUpdates([draft!.state, ...draft!.updates])),
      expected,
      'the expired draft keeps the content',
    );
    const [session] = await ctx.sql`select status from sessions where id = ${pair.sessionId}`;
    assert.is(session!.status, 'expired');
  },
);

expiry.run();
