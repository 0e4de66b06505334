/**
 * The documentation stays true. Every GraphQL operation in docs/graphql.md and docs/signing.md
 * is extracted and validated against the schema the server serves, then run against a real
 * server in the order an app would: Reference, Open, Join, Session, Register, Sign (twice, on
 * a form the devices filled), Constat, History, Verify, the two subscriptions, Abandon; none
 * answers an error. The worked example of docs/signing.md is recomputed with the tests' own
 * RFC 8785 code and Ed25519: its canonical text, its hash, its signature, and the skeleton hash,
 * which must be what a fresh session reports as its contentHash.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPrivateKey, sign } from 'node:crypto';
import { buildSchema, parse, print, validate, type OperationDefinitionNode } from 'graphql';
import { gql, startTestServer, token, type TestServer } from './support/server.js';
import { connectBoth, type Device } from './support/device.js';
import { fillConstat, newDeviceKey, signHash, verifySignature } from './support/signing.js';
import { subscribe } from './support/graphql.js';
import { jcs, sha256hex } from './support/jcs.js';
import { contentHash } from '../constat/content-hash.js';
import { setUp } from './support/suite.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

/** The fenced blocks of a markdown text in `lang`. */
function blocks(markdown: string, lang: string): string[] {
  const found: string[] = [];
  const fence = new RegExp('```' + lang + '\\n([\\s\\S]*?)\\n```', 'g');
  for (const m of markdown.matchAll(fence)) found.push(m[1]!);
  return found;
}

/** Every named operation of the docs' GraphQL blocks, by name. */
function operations(): Map<string, string> {
  const ops = new Map<string, string>();
  for (const file of ['docs/graphql.md', 'docs/signing.md']) {
    for (const block of blocks(read(file), 'graphql')) {
      for (const def of parse(block).definitions) {
        const op = def as OperationDefinitionNode;
        assert.ok(op.name, `${file}: every example operation has a name`);
        assert.not.ok(ops.has(op.name!.value), `${op.name!.value} is documented once`);
        ops.set(op.name!.value, print(op));
      }
    }
  }
  return ops;
}

interface Ctx {
  server: TestServer;
  devices: Device[];
}

const test = suite<Ctx>('docs: GraphQL examples and the worked signing example', {
  devices: [],
} as unknown as Ctx);

setUp(test, async (ctx) => {
  ctx.server = await startTestServer({ database: 'postgres', hub: 'memory' });
});
test.after(async (ctx) => {
  for (const d of ctx.devices.splice(0)) d.destroy();
  await ctx.server?.stop();
});

test('every documented operation is valid against the served schema', () => {
  const schema = buildSchema(read('server/graphql/schema.graphql'));
  const ops = operations();
  assert.ok(ops.size >= 12, `operations found: ${[...ops.keys()].join(', ')}`);
  for (const [name, text] of ops) {
    const errors = validate(schema, parse(text));
    assert.equal(
      errors.map((e) => e.message),
      [],
      `${name}`,
    );
  }
});

test('the documented operations run against the server, in the order an app uses them', async (ctx) => {
  const ops = operations();
  const run = async (name: string, bearer: string, variables: Record<string, unknown> = {}) => {
    const query = ops.get(name);
    assert.ok(query, `docs document ${name}`);
    const res = await gql<any>(ctx.server.url, bearer, query!, variables);
    assert.not.ok(res.errors, `${name}: ${JSON.stringify(res.errors)}`);
    return res.data;
  };
  const used = new Set<string>();
  const op = (name: string) => (used.add(name), name);
  const tokenA = await token('docs-a', 'phone-a');
  const tokenB = await token('docs-b', 'phone-b');

  const reference = await run(op('Reference'), tokenA);
  const dz = reference.formVersions.find((f: any) => f.id === 'dz');
  assert.is(dz.circumstances.length, 23);
  assert.is(dz.circumstances[15].id, 16);
  assert.ok(reference.insurers.some((i: any) => i.uid === 'saa'));
  const labelled = (await run(op('FormLabels'), tokenA)).formVersions.find(
    (f: any) => f.id === 'dz',
  );
  assert.ok(labelled.languages.includes('ar'), 'dz has Arabic labels');
  assert.is(labelled.circumstances.length, 23);
  for (const box of labelled.circumstances)
    assert.match(box.label, /[\u0600-\u06FF]/, `box ${box.id} in Arabic`);

  const opened = (await run(op('Open'), tokenA)).openSession;
  const sessionId = opened.session.id;
  const joined = (await run(op('Join'), tokenB, { code: opened.joinCode })).joinSession;
  assert.is(joined.role, 'B');
  const fresh = (await run(op('Session'), tokenA, { id: sessionId })).session;
  // docs/signing.md and docs/document.md give the hash of a fresh session.
  const skeletonHash = /`contentHash` of a fresh session, is\s+`([0-9a-f]{64})`/.exec(
    read('docs/signing.md'),
  )?.[1];
  assert.is(fresh.contentHash, skeletonHash, 'the documented skeleton hash is the real one');
  assert.match(read('docs/document.md'), skeletonHash!);

  const sessionSub = await subscribe(ctx.server.url, tokenA, ops.get(op('SessionChanged'))!, {
    id: sessionId,
  });
  assert.is(sessionSub.status, 200);
  // A photo slot (docs/media.md): requested, but never named in the document, so it does not
  // take part in signing and the session lists no attachment.
  const slot = (
    await run(op('RequestUpload'), tokenA, {
      sessionId,
      kind: 'damage',
      contentType: 'image/jpeg',
      byteSize: 2_097_152,
      sha256: 'ab'.repeat(32),
    })
  ).requestUpload;
  assert.ok(slot.attachmentId && slot.url && slot.method);
  const listed = (await run(op('SessionAttachments'), tokenA, { id: sessionId })).session;
  assert.equal(listed.attachments, []);
  const pair = { sessionId, tokenA, tokenB };
  const { a, b } = await connectBoth(ctx.server, pair, ctx.devices);
  await fillConstat(a, b, (x, y) => contentHash(x.doc) === contentHash(y.doc));
  const hash = contentHash(a.doc);
  const keys = { A: newDeviceKey(), B: newDeviceKey() };
  await run(op('Register'), tokenA, { publicKey: keys.A.publicKeyBase64 });
  await run(op('Register'), tokenB, { publicKey: keys.B.publicKeyBase64 });
  await run(op('Sign'), tokenA, {
    sessionId,
    contentHash: hash,
    signature: signHash(keys.A, sessionId, 'A', hash),
  });
  const signed = await run(op('Sign'), tokenB, {
    sessionId,
    contentHash: hash,
    signature: signHash(keys.B, sessionId, 'B', hash),
  });
  const constatId =
    signed.signConstat.constatId ??
    (await sessionSub.next((p) => p.data?.sessionChanged?.constatId, 15_000)).data.sessionChanged
      .constatId;
  await sessionSub.next((p) => p.data?.sessionChanged?.status === 'FINALIZED', 15_000);
  await sessionSub.close();

  const constat = (await run(op('Constat'), tokenA, { id: constatId })).constat;
  assert.is(constat.contentHash, hash);
  const files = (await run(op('ConstatAttachments'), tokenA, { id: constatId })).constat;
  assert.equal(files.attachments, []);
  const history = (await run(op('History'), tokenA, { first: 5 })).constats;
  assert.ok(history.edges.some((e: any) => e.node.id === constatId));
  const saa = await token('docs-saa', 'desk', { roles: ['insurer:saa'] });
  const verified = (await run(op('Verify'), saa, { id: constatId })).constat;
  assert.is(sha256hex(jcs(verified.content)), verified.contentHash);
  assert.is(verified.canonicalJson, jcs(verified.content));
  for (const s of verified.signatures) {
    const message = `constat-sign:v1:${verified.sessionId}:${s.role}:${verified.contentHash}`;
    assert.ok(verifySignature(s.publicKey, message, s.signature), `signature ${s.role}`);
  }
  // The AI findings as the constat's insurer reads them (filled in once the AI has run).
  const findings = (await run(op('Findings'), saa, { id: constatId })).constat;
  assert.ok(Array.isArray(findings.costEstimates));
  const constatSub = await subscribe(ctx.server.url, tokenA, ops.get(op('ConstatChanged'))!, {
    id: constatId,
  });
  assert.is(constatSub.status, 200);
  assert.is(constatSub.messages.length, 0, 'no message without a change');
  await constatSub.close();

  const other = (await run(op('Open'), tokenA)).openSession;
  const abandoned = (await run(op('Abandon'), tokenA, { sessionId: other.session.id }))
    .abandonSession;
  assert.is(abandoned.status, 'ABANDONED');
  assert.equal(
    [...ops.keys()].filter((name) => !used.has(name)),
    [],
    'every documented operation was run',
  );
});

test('the worked example of docs/signing.md recomputes exactly', () => {
  const doc = read('docs/signing.md');
  const example = doc.slice(doc.indexOf('### Worked example'));
  const content = JSON.parse(blocks(example, 'json')[0]!);
  const [canonical, message, signature] = blocks(example, 'text');
  assert.is(jcs(content), canonical, 'the canonical JSON');
  const hash = /Content hash: `([0-9a-f]{64})`/.exec(example)?.[1];
  assert.is(sha256hex(canonical!), hash, 'the content hash');
  const sessionId = /session id `([0-9a-f-]{36})`/.exec(example)?.[1];
  assert.is(message, `constat-sign:v1:${sessionId}:A:${hash}`, 'the signed message');
  // RFC 8032 §7.1, TEST 1: the private and public key.
  const seed = Buffer.from(
    '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    'hex',
  );
  const publicKey = /public key\s+`([A-Za-z0-9+/=]{44})`/.exec(example)?.[1];
  const privateKey = createPrivateKey({
    key: {
      kty: 'OKP',
      crv: 'Ed25519',
      d: seed.toString('base64url'),
      x: Buffer.from(publicKey!, 'base64').toString('base64url'),
    },
    format: 'jwk',
  });
  assert.is(
    sign(null, Buffer.from(message!, 'utf8'), privateKey).toString('base64'),
    signature,
    'the signature (Ed25519 is deterministic)',
  );
  assert.ok(verifySignature(publicKey!, message!, signature!));
});

test.run();
