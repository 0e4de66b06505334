/**
 * Opening and joining a session through GraphQL on a real server: the ticket each party gets,
 * single-use and short-lived join codes, who may join, and the brute-force throttles that keep
 * six digits from being guessed. Runs on PostgreSQL + Redis and on the embedded defaults
 * (PGlite, no Redis); each suite has a server (and limits) of its own.
 */
import * as assert from 'uvu/assert';
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import {
  gql,
  token,
  JOIN_SESSION,
  OPEN_SESSION,
  TEST_SECRET,
  type GraphQLResponse,
} from './support/server.js';
import { connectDevice } from './support/device.js';
import { SERVER_VARIANTS, serverSuite } from './support/suite.js';

const variants = SERVER_VARIANTS;

const SESSION = `query Session($id: ID!) {
  session(id: $id) { id status myRole formVersion createdAt expiresAt constatId
    parties { role userId deviceId joinedAt } }
}`;

/** A suite with a server of its own, started before and stopped after its tests. */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tag = () => randomBytes(4).toString('hex');
const errorCode = (res: GraphQLResponse) => res.errors?.[0]?.extensions?.code;

/** A user on a device, with a token for the test server. */
async function user(name = `user-${tag()}`, device = `device-${tag()}`) {
  return { userId: name, deviceId: device, token: await token(name, device) };
}

async function open(url: string, bearer: string, formVersion = 'dz') {
  const res = await gql(url, bearer, OPEN_SESSION, { formVersion });
  assert.is(res.errors, undefined, JSON.stringify(res.errors));
  return res.data!.openSession as {
    role: string;
    joinCode: string;
    qrPayload: string;
    syncUrl: string;
    joinCodeExpiresAt: string;
    session: { id: string; status: string; formVersion: string };
  };
}

const join = (url: string, bearer: string, code: string) =>
  gql(url, bearer, JOIN_SESSION, { code });

function assertRefused(res: GraphQLResponse, code: string, message = '') {
  assert.ok(res.errors && res.errors.length > 0, `${message} expected ${code}, got a ticket`);
  assert.is(res.data?.joinSession ?? null, null, message);
  assert.is(errorCode(res), code, `${message} ${JSON.stringify(res.errors)}`);
}

/** Six random digits that are none of `live`. */
function wrongCode(live: ReadonlySet<string>): string {
  for (;;) {
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    if (!live.has(code)) return code;
  }
}

for (const variant of variants) {
  serverSuite(`join (${variant.name})`, variant.options, (test) => {
    test('openSession returns a six-digit code, its QR payload and the sync URL, as party A', async ({
      server,
    }) => {
      const a = await user();
      const before = Date.now();
      const ticket = await open(server.url, a.token);
      assert.match(ticket.joinCode, /^\d{6}$/);
      assert.type(ticket.qrPayload, 'string');
      assert.ok(ticket.qrPayload.includes(ticket.joinCode), ticket.qrPayload);
      assert.is(ticket.role, 'A');
      assert.is(ticket.session.status, 'WAITING');
      assert.is(ticket.session.formVersion, 'dz');
      const syncUrl = new URL(ticket.syncUrl);
      assert.is(syncUrl.protocol, 'ws:');
      assert.is(syncUrl.host, new URL(server.url).host);
      assert.is(syncUrl.pathname, `/v1/sync/${ticket.session.id}`);
      assert.ok(ticket.syncUrl.endsWith(`/v1/sync/${ticket.session.id}`), ticket.syncUrl);
      const expires = Date.parse(ticket.joinCodeExpiresAt);
      assert.ok(expires > before, 'join code expiry lies ahead');
    });

    test('the ticket sync URL connects a stock client (server URL + room = session id)', async (ctx) => {
      const a = await user();
      const ticket = await open(ctx.server.url, a.token);
      const base = ticket.syncUrl.slice(0, ticket.syncUrl.lastIndexOf('/'));
      const device = connectDevice(base, ticket.session.id, a.token);
      ctx.devices.push(device);
      await device.synced();
      assert.is(device.closes.length, 0);
    });

    test('joinSession makes the joiner party B and the session ACTIVE', async ({ server }) => {
      const a = await user();
      const b = await user();
      const opened = await open(server.url, a.token);
      const res = await join(server.url, b.token, opened.joinCode);
      assert.is(res.errors, undefined, JSON.stringify(res.errors));
      const joined = res.data!.joinSession;
      assert.is(joined.role, 'B');
      assert.is(joined.session.id, opened.session.id);
      assert.is(joined.session.status, 'ACTIVE');
      assert.is(joined.syncUrl, opened.syncUrl);
      assert.equal(
        (joined.session.parties as Array<Record<string, string>>).map((p) => [
          p.role,
          p.userId,
          p.deviceId,
        ]),
        [
          ['A', a.userId, a.deviceId],
          ['B', b.userId, b.deviceId],
        ],
      );
    });

    test('a code typed with surrounding spaces still joins', async ({ server }) => {
      const a = await user();
      const b = await user();
      const opened = await open(server.url, a.token);
      const res = await join(server.url, b.token, ` ${opened.joinCode} `);
      assert.is(res.errors, undefined, JSON.stringify(res.errors));
      assert.is(res.data!.joinSession.role, 'B');
    });

    test('a used code is refused with NOT_FOUND', async ({ server }) => {
      const a = await user();
      const b = await user();
      const c = await user();
      const opened = await open(server.url, a.token);
      assert.is((await join(server.url, b.token, opened.joinCode)).errors, undefined);
      assertRefused(await join(server.url, c.token, opened.joinCode), 'NOT_FOUND', 'third user:');
      assertRefused(await join(server.url, b.token, opened.joinCode), 'NOT_FOUND', 'B again:');
    });

    test('malformed codes are NOT_FOUND, not an error', async ({ server }) => {
      const c = await user();
      for (const code of ['', '12345', '1234567', 'abcdef', '12 456', '١٢٣٤٥٦', '１２３４５６']) {
        assertRefused(await join(server.url, c.token, code), 'NOT_FOUND', JSON.stringify(code));
      }
    });

    test('the opener cannot join their own session, from any device (CONFLICT)', async ({
      server,
    }) => {
      const a = await user();
      const opened = await open(server.url, a.token);
      assertRefused(await join(server.url, a.token, opened.joinCode), 'CONFLICT', 'same device:');
      const otherDevice = await token(a.userId, `device-${tag()}`);
      assertRefused(await join(server.url, otherDevice, opened.joinCode), 'CONFLICT', 'other:');
      // The refusal did not use up the code: the other driver still joins with it.
      const b = await user();
      const res = await join(server.url, b.token, opened.joinCode);
      assert.is(res.errors, undefined, JSON.stringify(res.errors));
      assert.is(res.data!.joinSession.session.status, 'ACTIVE');
    });

    test('a third user cannot join a full session', async ({ server }) => {
      const a = await user();
      const b = await user();
      const c = await user();
      const opened = await open(server.url, a.token);
      assert.is((await join(server.url, b.token, opened.joinCode)).errors, undefined);
      assertRefused(await join(server.url, c.token, opened.joinCode), 'NOT_FOUND');
      const seen = await gql(server.url, a.token, SESSION, { id: opened.session.id });
      const parties = seen.data!.session.parties as Array<{ role: string; userId: string }>;
      assert.equal(
        parties.map((p) => p.userId),
        [a.userId, b.userId],
      );
    });

    test('of many users joining with one code at once, exactly one becomes party B', async ({
      server,
    }) => {
      const a = await user();
      const opened = await open(server.url, a.token);
      const joiners = await Promise.all(Array.from({ length: 8 }, () => user()));
      const results = await Promise.all(
        joiners.map((j) => join(server.url, j.token, opened.joinCode)),
      );
      const winners = results.filter((r) => !r.errors);
      assert.is(winners.length, 1, JSON.stringify(results.map(errorCode)));
      for (const r of results) {
        if (r.errors) assert.ok(['NOT_FOUND', 'CONFLICT'].includes(String(errorCode(r))));
      }
      const seen = await gql(server.url, a.token, SESSION, { id: opened.session.id });
      const parties = seen.data!.session.parties as Array<{ role: string; userId: string }>;
      assert.is(parties.length, 2);
      const winnerB = (
        winners[0]!.data!.joinSession.session.parties as Array<{ role: string; userId: string }>
      ).find((p) => p.role === 'B');
      assert.is(parties[1]!.userId, winnerB!.userId);
    });

    test('an unknown form version is BAD_USER_INPUT', async ({ server }) => {
      const a = await user();
      for (const formVersion of ['xx', '', 'DZ ']) {
        const res = await gql(server.url, a.token, OPEN_SESSION, { formVersion });
        assert.is(errorCode(res), 'BAD_USER_INPUT', `${formVersion}: ${JSON.stringify(res)}`);
        assert.is(res.data?.openSession ?? null, null);
      }
      // And the known ones open.
      assert.is((await open(server.url, a.token, 'eu')).session.formVersion, 'eu');
    });

    test('session(id) answers its parties, and null to anyone else', async ({ server }) => {
      const a = await user();
      const b = await user();
      const stranger = await user();
      const opened = await open(server.url, a.token);
      const id = opened.session.id;
      const waiting = await gql(server.url, a.token, SESSION, { id });
      assert.is(waiting.errors, undefined, JSON.stringify(waiting.errors));
      assert.is(waiting.data!.session.status, 'WAITING');
      assert.is(waiting.data!.session.myRole, 'A');
      assert.is((await gql(server.url, b.token, SESSION, { id })).data!.session, null);
      assert.is((await join(server.url, b.token, opened.joinCode)).errors, undefined);

      const forA = await gql(server.url, a.token, SESSION, { id });
      const forB = await gql(server.url, b.token, SESSION, { id });
      assert.is(forA.data!.session.id, id);
      assert.is(forA.data!.session.myRole, 'A');
      assert.is(forA.data!.session.status, 'ACTIVE');
      assert.is(forB.data!.session.myRole, 'B');
      assert.equal(forA.data!.session.parties, forB.data!.session.parties);

      const forStranger = await gql(server.url, stranger.token, SESSION, { id });
      assert.is(forStranger.errors, undefined);
      assert.is(forStranger.data!.session, null);
      // Unknown and malformed ids give the same answer as a session that is not yours.
      for (const other of [randomUUID(), 'x', '../../etc']) {
        const res = await gql(server.url, a.token, SESSION, { id: other });
        assert.is(res.errors, undefined, `${other}: ${JSON.stringify(res.errors)}`);
        assert.is(res.data!.session, null, other);
      }
    });

    test('a missing, invalid or expired token is HTTP 401 UNAUTHENTICATED', async ({ server }) => {
      const noDevice = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('someone')
        .setExpirationTime('1h')
        .sign(new TextEncoder().encode(TEST_SECRET));
      const cases: Array<[string, Record<string, string>]> = [
        ['no header', {}],
        ['not bearer', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }],
        ['empty bearer', { authorization: 'Bearer ' }],
        ['garbage', { authorization: 'Bearer not.a.jwt' }],
        [
          'other secret',
          {
            authorization: `Bearer ${await token('u', 'd', { secret: 'another-secret-0123456789abcdef-xyz' })}`,
          },
        ],
        [
          'expired',
          {
            authorization: `Bearer ${await token('u', 'd', { expiresIn: Math.floor(Date.now() / 1000) - 60 })}`,
          },
        ],
        ['no device claim', { authorization: `Bearer ${noDevice}` }],
      ];
      for (const [name, headers] of cases) {
        const res = await fetch(`${server.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ query: '{ me { id } }' }),
        });
        assert.is(res.status, 401, name);
        const body = (await res.json()) as GraphQLResponse;
        assert.is(body.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED', name);
      }
      const viaGet = await fetch(`${server.url}/graphql?query=${encodeURIComponent('{me{id}}')}`);
      assert.is(viaGet.status, 401);
      // And a valid token passes.
      const me = await gql(server.url, await token('u', 'd'), '{ me { id deviceId } }');
      assert.equal(me.data, { me: { id: 'u', deviceId: 'd' } });
    });
  });

  serverSuite(
    `join code expiry (${variant.name})`,
    { ...variant.options, env: { JOIN_CODE_TTL_MS: '1000' } },
    (test) => {
      test('an expired join code is refused', async ({ server }) => {
        const a = await user();
        const b = await user();
        const opened = await open(server.url, a.token);
        assert.ok(Date.parse(opened.joinCodeExpiresAt) - Date.now() <= 1_000);
        await sleep(1_300);
        assertRefused(await join(server.url, b.token, opened.joinCode), 'NOT_FOUND');
        // Only the code expired: the session is still there for A, still waiting.
        const seen = await gql(server.url, a.token, SESSION, { id: opened.session.id });
        assert.is(seen.data!.session.status, 'WAITING');
        assert.is(seen.data!.session.parties.length, 1);
      });
    },
  );

  const PER_USER = 4;
  const WINDOW_MS = 2_500;
  serverSuite(
    `join throttle per user (${variant.name})`,
    {
      ...variant.options,
      env: { JOIN_FAILURES_PER_USER: String(PER_USER), JOIN_THROTTLE_WINDOW_MS: String(WINDOW_MS) },
    },
    (test) => {
      test('a user is RATE_LIMITED after too many wrong codes, even with the right one', async ({
        server,
      }) => {
        const a = await user();
        const guesser = await user();
        const opened = await open(server.url, a.token);
        const live = new Set([opened.joinCode]);
        const firstFailure = Date.now();
        for (let i = 0; i < PER_USER; i++) {
          assertRefused(
            await join(server.url, guesser.token, wrongCode(live)),
            'NOT_FOUND',
            `guess ${i}:`,
          );
        }
        assertRefused(await join(server.url, guesser.token, wrongCode(live)), 'RATE_LIMITED');
        assertRefused(await join(server.url, guesser.token, opened.joinCode), 'RATE_LIMITED');
        // The same user on another device is the same user.
        const otherDevice = await token(guesser.userId, `device-${tag()}`);
        assertRefused(await join(server.url, otherDevice, opened.joinCode), 'RATE_LIMITED');
        assert.ok(Date.now() - firstFailure < WINDOW_MS, 'checks ran inside the window');

        // The refusal did not consume the code, and other users are not throttled.
        const b = await user();
        const joined = await join(server.url, b.token, opened.joinCode);
        assert.is(joined.errors, undefined, JSON.stringify(joined.errors));

        // Once the window has passed, the user may join again.
        const next = await open(server.url, (await user()).token);
        await sleep(Math.max(0, firstFailure + WINDOW_MS + 300 - Date.now()));
        const again = await join(server.url, guesser.token, next.joinCode);
        assert.is(again.errors, undefined, JSON.stringify(again.errors));
        assert.is(again.data!.joinSession.role, 'B');
      });

      test('concurrent wrong codes from one user are throttled at the limit too', async ({
        server,
      }) => {
        const a = await user();
        const guesser = await user();
        const opened = await open(server.url, a.token);
        const live = new Set([opened.joinCode]);
        const results = await Promise.all(
          Array.from({ length: 40 }, () => join(server.url, guesser.token, wrongCode(live))),
        );
        const evaluated = results.filter((r) => errorCode(r) === 'NOT_FOUND').length;
        const limited = results.filter((r) => errorCode(r) === 'RATE_LIMITED').length;
        assert.is(evaluated + limited, results.length);
        // Parallel requests must not buy a guesser more attempts than sequential ones.
        assert.ok(
          evaluated <= PER_USER,
          `${evaluated} guesses were checked against live codes; the limit is ${PER_USER}`,
        );
      });
    },
  );

  const GLOBAL = 6;
  serverSuite(
    `join throttle global (${variant.name})`,
    {
      ...variant.options,
      env: { JOIN_FAILURES_GLOBAL: String(GLOBAL), JOIN_FAILURES_PER_USER: '2' },
    },
    (test) => {
      test('many users together hit the global limit and are all refused', async ({ server }) => {
        const a = await user();
        const opened = await open(server.url, a.token);
        const live = new Set([opened.joinCode]);
        for (let i = 0; i < GLOBAL; i++) {
          const guesser = await user();
          assertRefused(
            await join(server.url, guesser.token, wrongCode(live)),
            'NOT_FOUND',
            `user ${i}:`,
          );
        }
        const late = await user();
        assertRefused(await join(server.url, late.token, wrongCode(live)), 'RATE_LIMITED');
        // While the service is under attack, nobody joins, not even with the right code.
        const honest = await user();
        assertRefused(await join(server.url, honest.token, opened.joinCode), 'RATE_LIMITED');
        // Opening a session is not throttled.
        await open(server.url, (await user()).token);
      });
    },
  );

  serverSuite(
    `join throttle global, concurrent (${variant.name})`,
    {
      ...variant.options,
      env: { JOIN_FAILURES_GLOBAL: String(GLOBAL), JOIN_FAILURES_PER_USER: '2' },
    },
    (test) => {
      test('concurrent wrong codes from many users are throttled at the global limit', async ({
        server,
      }) => {
        const a = await user();
        const opened = await open(server.url, a.token);
        const live = new Set([opened.joinCode]);
        const guessers = await Promise.all(Array.from({ length: 40 }, () => user()));
        const results = await Promise.all(
          guessers.map((g) => join(server.url, g.token, wrongCode(live))),
        );
        const evaluated = results.filter((r) => errorCode(r) === 'NOT_FOUND').length;
        const limited = results.filter((r) => errorCode(r) === 'RATE_LIMITED').length;
        assert.is(evaluated + limited, results.length);
        assert.ok(
          evaluated <= GLOBAL,
          `${evaluated} guesses were checked against live codes; the limit is ${GLOBAL}`,
        );
      });
    },
  );

  serverSuite(`join brute force, default limits (${variant.name})`, variant.options, (test) => {
    test('200 guesses by rotating users never join a live session', async ({ server }) => {
      const openers = await Promise.all(Array.from({ length: 5 }, () => user()));
      const tickets = await Promise.all(openers.map((o) => open(server.url, o.token)));
      const live = new Set(tickets.map((t) => t.joinCode));
      // Near misses of every live code, then random codes. A random draw equal to a live code
      // is drawn again: what is checked is that nothing but the exact code admits anyone (the
      // odds of a lucky draw are what the limits bound).
      const guesses: string[] = [];
      for (const code of live) {
        const digit = (i: number) => String((Number(code[i]) + 1) % 10);
        guesses.push(
          code.slice(0, 5) + digit(5),
          digit(0) + code.slice(1),
          code.slice(0, 5),
          code + '0',
          '0' + code.slice(0, 5),
          String(Number(code)),
          [...code].map((d) => String.fromCharCode(0xff10 + Number(d))).join(''),
          `${code.slice(0, 3)} ${code.slice(3)}`,
        );
      }
      const unique = new Set(guesses.filter((g) => !live.has(g)));
      while (unique.size < 200) unique.add(wrongCode(live));
      const all = [...unique].slice(0, 200);
      const guessers = await Promise.all(Array.from({ length: 25 }, () => user()));
      const outcomes: Record<string, number> = {};
      for (let i = 0; i < all.length; i += 10) {
        const batch = all.slice(i, i + 10);
        const results = await Promise.all(
          batch.map((code, j) =>
            join(server.url, guessers[(i + j) % guessers.length]!.token, code),
          ),
        );
        results.forEach((res, j) => {
          assert.ok(res.errors, `guess ${JSON.stringify(batch[j])} joined a session`);
          const code = String(errorCode(res));
          outcomes[code] = (outcomes[code] ?? 0) + 1;
        });
      }
      assert.equal(Object.keys(outcomes).sort(), ['NOT_FOUND'], JSON.stringify(outcomes));
      for (const [i, t] of tickets.entries()) {
        const seen = await gql(server.url, openers[i]!.token, SESSION, { id: t.session.id });
        assert.is(seen.data!.session.status, 'WAITING');
        assert.is(seen.data!.session.parties.length, 1);
      }
      // The guessing left the real codes working for the real second drivers.
      const b = await user();
      const joined = await join(server.url, b.token, tickets[0]!.joinCode);
      assert.is(joined.errors, undefined, JSON.stringify(joined.errors));
    });
  });
}
