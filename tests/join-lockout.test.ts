/**
 * One account (or one device) attacking joinSession must not lock everybody else out: once
 * it is throttled its attempts stop feeding the global guard, so an unrelated pair still joins
 * with its valid code during the attack. On PostgreSQL + Redis and on the embedded defaults.
 */
import * as assert from 'uvu/assert';
import { randomBytes, randomInt } from 'node:crypto';
import { gql, token, JOIN_SESSION, OPEN_SESSION, type GraphQLResponse } from './support/server.js';
import { SERVER_VARIANTS, serverSuite } from './support/suite.js';

const PER_USER = 5;
const GLOBAL = 20;
const tag = () => randomBytes(4).toString('hex');
const errorCode = (res: GraphQLResponse) => res.errors?.[0]?.extensions?.code;

function wrongCode(live: ReadonlySet<string>): string {
  for (;;) {
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    if (!live.has(code)) return code;
  }
}

async function openCode(url: string): Promise<string> {
  const opener = await token(`opener-${tag()}`, `phone-${tag()}`);
  const res = await gql(url, opener, OPEN_SESSION, { formVersion: 'dz' });
  assert.is(res.errors, undefined, JSON.stringify(res.errors));
  return res.data!.openSession.joinCode as string;
}

/** `attempts` wrong codes from the given tokens, in turn; returns how each was answered. */
async function guess(url: string, tokens: string[], attempts: number, live: Set<string>) {
  const answers: Record<string, number> = {};
  for (let i = 0; i < attempts; i++) {
    const res = await gql(url, tokens[i % tokens.length]!, JOIN_SESSION, {
      code: wrongCode(live),
    });
    const code = String(errorCode(res));
    answers[code] = (answers[code] ?? 0) + 1;
  }
  return answers;
}

async function honestJoin(url: string, code: string) {
  const joiner = await token(`honest-${tag()}`, `phone-${tag()}`);
  return gql(url, joiner, JOIN_SESSION, { code });
}

for (const variant of SERVER_VARIANTS) {
  serverSuite(
    `join lockout (${variant.name})`,
    {
      ...variant.options,
      env: { JOIN_FAILURES_PER_USER: String(PER_USER), JOIN_FAILURES_GLOBAL: String(GLOBAL) },
    },
    (test) => {
      test('one account with two devices guessing far past every limit: a valid code still joins', async ({
        server,
      }) => {
        const code = await openCode(server.url);
        const live = new Set([code]);
        const attacker = `attacker-${tag()}`;
        const tokens = [await token(attacker, `a1-${tag()}`), await token(attacker, `a2-${tag()}`)];
        const answers = await guess(server.url, tokens, GLOBAL * 2, live);
        assert.is(answers.NOT_FOUND, PER_USER, JSON.stringify(answers));
        assert.is(answers.RATE_LIMITED, GLOBAL * 2 - PER_USER, JSON.stringify(answers));
        const joined = await honestJoin(server.url, code);
        assert.is(joined.errors, undefined, JSON.stringify(joined.errors));
        assert.is(joined.data!.joinSession.role, 'B');
      });

      test('one device presenting many accounts guessing past every limit: a valid code still joins', async ({
        server,
      }) => {
        const code = await openCode(server.url);
        const live = new Set([code]);
        const device = `shared-${tag()}`;
        const tokens = await Promise.all(
          Array.from({ length: 8 }, () => token(`sock-${tag()}`, device)),
        );
        const answers = await guess(server.url, tokens, GLOBAL * 2, live);
        assert.is(answers.NOT_FOUND, PER_USER, JSON.stringify(answers));
        const joined = await honestJoin(server.url, code);
        assert.is(joined.errors, undefined, JSON.stringify(joined.errors));
        assert.is(joined.data!.joinSession.role, 'B');
      });
    },
  );
}
