/**
 * An insurer verifies a constat from GraphQL alone, on the embedded default (no broker, so no
 * Kafka event to read it from): `content` canonicalised with the tests' own RFC 8785 code is
 * exactly `canonicalJson`, whose SHA-256 is `contentHash`, and each signature verifies with the
 * public key GraphQL gives, over `constat-sign:v1:<sessionId>:<role>:<contentHash>`. The
 * insurer's staff see it as the parties do; anyone else does not see the constat at all.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { gql, startTestServer, token, type TestServer } from './support/server.js';
import {
  finalizeConstat,
  signingMessage,
  verifySignature,
  type Finalized,
} from './support/signing.js';
import { jcs, sha256hex } from './support/jcs.js';
import { setUp } from './support/suite.js';

interface Ctx {
  server: TestServer;
  constat: Finalized;
}

const test = suite<Ctx>('signing: verified from GraphQL alone (embedded default)', {} as Ctx);

setUp(test, async (ctx) => {
  ctx.server = await startTestServer({ database: 'pglite', hub: 'memory' });
  ctx.constat = await finalizeConstat(ctx.server); // vehicle A: saa, vehicle B: trust
});
test.after(async (ctx) => {
  await ctx.server?.stop();
});

// The query of docs/signing.md ("From GraphQL").
const QUERY = `query Verify($id: ID!) {
  constat(id: $id) {
    sessionId contentHash canonicalJson content
    signatures { role hash signature publicKey }
  }
}`;

interface Answer {
  constat: {
    sessionId: string;
    contentHash: string;
    canonicalJson: string;
    content: Record<string, unknown>;
    signatures: Array<{ role: 'A' | 'B'; hash: string; signature: string; publicKey: string }>;
  } | null;
}

test('the hash is rebuilt from content and every signature verifies, for parties and insurers', async (ctx) => {
  const tag = randomBytes(3).toString('hex');
  const viewers = {
    'party A': ctx.constat.tokenA,
    'party B': ctx.constat.tokenB,
    'saa staff': await token(`staff-${tag}`, 'desk', { roles: ['insurer:saa'] }),
    'trust staff': await token(`staff2-${tag}`, 'desk', { roles: ['insurer:trust'] }),
  };
  for (const [who, bearer] of Object.entries(viewers)) {
    const res = await gql<Answer>(ctx.server.url, bearer, QUERY, { id: ctx.constat.constatId });
    assert.not.ok(res.errors, `${who}: ${JSON.stringify(res.errors)}`);
    const c = res.data!.constat!;
    assert.equal(
      Object.keys(c.content).sort(),
      ['accident', 'sketch', 'vehicleA', 'vehicleB'],
      `${who}: the four signed roots`,
    );
    assert.is(jcs(c.content), c.canonicalJson, `${who}: content canonicalises to canonicalJson`);
    assert.is(
      sha256hex(c.canonicalJson),
      c.contentHash,
      `${who}: canonicalJson hashes to contentHash`,
    );
    assert.is(c.contentHash, ctx.constat.hash, `${who}: the hash the devices signed`);
    assert.equal(
      c.signatures.map((s) => s.role),
      ['A', 'B'],
    );
    for (const s of c.signatures) {
      assert.is(s.hash, c.contentHash);
      assert.ok(
        verifySignature(
          s.publicKey,
          signingMessage(c.sessionId, s.role, c.contentHash),
          s.signature,
        ),
        `${who}: signature ${s.role} verifies`,
      );
      // And it would not verify over any other content.
      assert.not.ok(
        verifySignature(
          s.publicKey,
          signingMessage(c.sessionId, s.role, sha256hex(`${c.canonicalJson} `)),
          s.signature,
        ),
      );
    }
  }
  const other = await token(`staff3-${tag}`, 'desk', { roles: ['insurer:caat'] });
  const hidden = await gql<Answer>(ctx.server.url, other, QUERY, { id: ctx.constat.constatId });
  assert.is(hidden.data?.constat, null, 'another insurer does not see it');
});

test.run();
