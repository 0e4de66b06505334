/**
 * Device keys are versioned: a key id (RFC 7638 thumbprint) is stored with each signature and
 * carried in GraphQL and in the finalized event; replacing a key answers with the old key id,
 * and a constat stays verifiable with the key that signed it even when the device replaced its
 * key between signing and finalization.
 */
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import postgres from 'postgres';
import { gql, token } from './support/server.js';
import {
  finalizeConstat,
  newDeviceKey,
  signingMessage,
  verifySignature,
  type DeviceKey,
} from './support/signing.js';
import { serverSuite } from './support/suite.js';

const REGISTER = `mutation Register($publicKey: String!) {
  registerDevice(publicKey: $publicKey) { publicKey keyId keyVersion replacedKeyId }
}`;
const SIGNATURES = `query($id: ID!) { constat(id: $id) {
  signatures { role userId deviceId publicKey keyId signature hash }
} }`;

/** RFC 7638 thumbprint of a raw Ed25519 key, computed by hand from the RFC. */
function thumbprint(publicKeyBase64: string): string {
  const x = Buffer.from(publicKeyBase64, 'base64').toString('base64url');
  return createHash('sha256')
    .update(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`)
    .digest('base64url');
}

async function register(url: string, bearer: string, key: DeviceKey) {
  const res = await gql(url, bearer, REGISTER, { publicKey: key.publicKeyBase64 });
  assert.is(res.errors, undefined, JSON.stringify(res.errors));
  return res.data!.registerDevice as {
    publicKey: string;
    keyId: string;
    keyVersion: number;
    replacedKeyId: string | null;
  };
}

serverSuite('device keys', { database: 'postgres', hub: 'memory' }, (test) => {
  test('a key replaced between signing and finalization: the constat verifies with the key that signed', async ({
    server,
  }) => {
    let signedWith: { A?: string } = {};
    let replacement: Awaited<ReturnType<typeof register>> | undefined;
    const newKey = newDeviceKey();
    const f = await finalizeConstat(server, {
      beforeSecondSignature: async ({ sessionId, tokenA }) => {
        const res = await gql(
          server.url,
          tokenA,
          `query($id: ID!) { session(id: $id) { signatures { role publicKey keyId } } }`,
          { id: sessionId },
        );
        assert.is(res.errors, undefined, JSON.stringify(res.errors));
        const a = res.data!.session.signatures.find((s: { role: string }) => s.role === 'A');
        signedWith = { A: a.publicKey };
        assert.is(a.keyId, thumbprint(a.publicKey), 'the live signature names its key id');
        // A's phone now swaps in another key.
        replacement = await register(server.url, tokenA, newKey);
      },
    });
    const oldKeyId = thumbprint(signedWith.A!);
    assert.equal(replacement, {
      publicKey: newKey.publicKeyBase64,
      keyId: thumbprint(newKey.publicKeyBase64),
      keyVersion: 2,
      replacedKeyId: oldKeyId,
    });

    // GraphQL: the signature keeps the key and key id that verified it.
    const res = await gql(server.url, f.tokenA, SIGNATURES, { id: f.constatId });
    assert.is(res.errors, undefined, JSON.stringify(res.errors));
    const sigA = res.data!.constat.signatures.find((s: { role: string }) => s.role === 'A');
    assert.is(sigA.keyId, oldKeyId);
    assert.is(sigA.publicKey, signedWith.A);

    // The finalized event carries the key id; the registry still has that key under it.
    const sql = postgres(server.databaseUrl!, { max: 1, onnotice: () => {} });
    try {
      const [row] = await sql<{ payload: any }[]>`
        select payload from outbox where message_key = ${f.constatId} limit 1
      `;
      const data = row!.payload.data;
      for (const s of data.signatures) {
        assert.is(s.keyId, thumbprint(s.publicKey), `${s.role}: key id of the key that signed`);
        const [registered] = await sql<{ public_key: Uint8Array; version: number }[]>`
          select public_key, version from device_keys
          where user_id = ${s.userId} and device_id = ${s.deviceId} and key_id = ${s.keyId}
        `;
        assert.ok(registered, `${s.role}: key ${s.keyId} is still registered`);
        const key = Buffer.from(registered!.public_key).toString('base64');
        assert.ok(
          verifySignature(
            key,
            signingMessage(data.sessionId, s.role, data.contentHash),
            s.signature,
          ),
          `${s.role}: verifies with the registered key of that id`,
        );
      }
      assert.is(data.signatures.find((s: { role: string }) => s.role === 'A').keyId, oldKeyId);
      const versions = await sql<{ version: number; replaced: boolean }[]>`
        select version, replaced_at is not null as replaced from device_keys
        where user_id = ${f.userA} order by version
      `;
      assert.equal(
        versions.map((v) => ({ ...v })),
        [
          { version: 1, replaced: true },
          { version: 2, replaced: false },
        ],
      );
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  test('registering the same key again replaces nothing', async ({ server }) => {
    const bearer = await token('same-key-user', 'same-key-phone');
    const key = newDeviceKey();
    const first = await register(server.url, bearer, key);
    assert.equal(first, {
      publicKey: key.publicKeyBase64,
      keyId: thumbprint(key.publicKeyBase64),
      keyVersion: 1,
      replacedKeyId: null,
    });
    assert.equal(await register(server.url, bearer, key), first);
  });
});
