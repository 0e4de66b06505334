/**
 * The report through the whole flow, on PostgreSQL + Redis with the file media store: a constat
 * finalized by two real devices gets its PDF without anyone asking; both parties and their
 * insurers read `Constat.pdf` (a stranger sees nothing); the downloaded file has the recorded
 * SHA-256; the insurers' topics get `dz.constat.document_ready.v1` through the outbox, and the
 * finalized event carries the liability suggestion, which GraphQL shows to the insurers only. A
 * re-render adds version 2 and keeps version 1 retrievable. The verification page answers for
 * the content hash and the file hash, and gives the same answer for a wrong hash and an unknown
 * id. A job left from a stopped instance is rendered by the next one. Then a server whose
 * CHROMIUM_PATH names a missing file: `/readyz` and the start-up log say the feature is
 * unavailable, and `Constat.pdf` answers UNAVAILABLE.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import postgres from 'postgres';
import { gql, spawnServer, startTestServer, token, type TestServer } from './support/server.js';
import {
  errorCode,
  eventually,
  finalizeConstat,
  sleep,
  type Finalized,
} from './support/signing.js';
import { setUp } from './support/suite.js';

const PDF = `query($id: ID!) { constat(id: $id) {
  id pdf { url sha256 version createdAt byteSize template } documents { version sha256 }
  liabilitySuggestion { shareA shareB rule contradictory ticksA ticksB }
} }`;

interface Ctx {
  server: TestServer;
  sql: postgres.Sql;
  constat: Finalized;
}

async function readPdf(server: TestServer, bearer: string, id: string, version?: number) {
  const query = version
    ? `query($id: ID!, $v: Int) { constat(id: $id) { pdf(version: $v) { url sha256 version } } }`
    : PDF;
  const res = await gql(server.url, bearer, query, { id, v: version });
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data!.constat;
}

const test = suite<Ctx>('report through the flow', {} as Ctx);
setUp(test, async (ctx) => {
  ctx.server = await startTestServer({ env: { REPORT_POLL_MS: '100' } });
  ctx.sql = postgres(ctx.server.databaseUrl!, { max: 2, onnotice: () => {} });
  ctx.constat = await finalizeConstat(ctx.server);
});
test.after(async (ctx) => {
  await ctx.sql?.end({ timeout: 5 });
  await ctx.server?.stop();
});

test('the PDF is rendered after finalization and its bytes have the recorded hash', async (ctx) => {
  const { constat } = ctx;
  const pdf = await eventually(
    async () => (await readPdf(ctx.server, constat.tokenA, constat.constatId)).pdf ?? undefined,
    60_000,
    'no PDF after finalization',
  );
  assert.is(pdf.version, 1);
  assert.match(pdf.sha256, /^[0-9a-f]{64}$/);
  const response = await fetch(pdf.url);
  assert.is(response.status, 200);
  assert.is(response.headers.get('content-type'), 'application/pdf');
  const bytes = new Uint8Array(await response.arrayBuffer());
  assert.is(bytes.byteLength, pdf.byteSize);
  assert.is(createHash('sha256').update(bytes).digest('hex'), pdf.sha256);
  assert.is(Buffer.from(bytes.subarray(0, 5)).toString(), '%PDF-');
  // Party B reads the same document.
  const b = await readPdf(ctx.server, constat.tokenB, constat.constatId);
  assert.is(b.pdf.sha256, pdf.sha256);
});

test('insurers read the PDF and the liability suggestion; drivers and strangers do not', async (ctx) => {
  const { constat } = ctx;
  const saa = await token('staff-saa', 'desk-1', { roles: ['insurer:saa'] });
  const trust = await token('staff-trust', 'desk-2', { roles: ['insurer:trust'] });
  const other = await token('staff-caat', 'desk-3', { roles: ['insurer:caat'] });
  for (const bearer of [saa, trust]) {
    const c = await readPdf(ctx.server, bearer, constat.constatId);
    assert.ok(c.pdf?.sha256, 'the insurer sees the PDF');
    // The fixture: A ticked box 1 (rear-end), B nothing.
    assert.equal(c.liabilitySuggestion, {
      shareA: 100,
      shareB: 0,
      rule: 'rear-end',
      contradictory: false,
      ticksA: [1],
      ticksB: [],
    });
  }
  for (const bearer of [constat.tokenA, constat.tokenB]) {
    const c = await readPdf(ctx.server, bearer, constat.constatId);
    assert.is(c.liabilitySuggestion, null, 'a driver must not see the suggestion');
  }
  const stranger = await gql(ctx.server.url, other, PDF, { id: constat.constatId });
  assert.is(stranger.data?.constat, null);
});

test('the finalized event carries the suggestion; document_ready goes to both insurers', async (ctx) => {
  const { constatId } = ctx.constat;
  const rows = await eventually(async () => {
    const r = await ctx.sql<{ topic: string; payload: any }[]>`
      select topic, payload from outbox where message_key = ${constatId} order by created_at, topic`;
    return r.some((x) => x.payload.type === 'dz.constat.document_ready.v1') ? r : undefined;
  });
  const finalized = rows.filter((r) => r.payload.type === 'dz.constat.finalized.v1');
  assert.equal(finalized.map((r) => r.topic).sort(), ['constats', 'saa', 'trust']);
  assert.is(finalized[0]!.payload.data.liabilitySuggestion.rule, 'rear-end');
  assert.is(finalized[0]!.payload.data.liabilitySuggestion.shareA, 100);
  const ready = rows.filter((r) => r.payload.type === 'dz.constat.document_ready.v1');
  assert.equal(ready.map((r) => r.topic).sort(), ['saa', 'trust']);
  const data = ready[0]!.payload.data;
  const [doc] = await ctx.sql<{ sha256: string }[]>`
    select sha256 from constat_documents where constat_id = ${constatId} and version = 1`;
  assert.is(data.document.sha256, doc!.sha256);
  assert.is(data.contentHash, ctx.constat.hash);
  const response = await fetch(data.url);
  assert.is(response.status, 200, 'the link in the event downloads the PDF');
});

test('the verification page: content hash, file hash, wrong hash, unknown id', async (ctx) => {
  const { constatId, hash } = ctx.constat;
  const ask = (id: string, h: string, json = true) =>
    fetch(`${ctx.server.url}/verify/${id}?h=${h}`, {
      headers: json ? { accept: 'application/json' } : {},
    });
  const good = await ask(constatId, hash);
  assert.is(good.status, 200);
  const body = await good.json();
  assert.is(body.match, true);
  assert.is(body.matched, 'content');
  assert.equal(
    body.signatures.map((s: { role: string; valid: boolean }) => [s.role, s.valid]),
    [
      ['A', true],
      ['B', true],
    ],
  );
  const text = JSON.stringify(body);
  for (const personal of ['Haddad', 'Mansouri', '12345-115-16', 'Bab Ezzouar', 'user-a-']) {
    assert.not.ok(text.includes(personal), `the page reveals ${personal}`);
  }
  const html = await (await ask(constatId, hash, false)).text();
  assert.match(html, /Constat authentique/);

  const [doc] = await ctx.sql<{ sha256: string }[]>`
    select sha256 from constat_documents where constat_id = ${constatId} order by version limit 1`;
  const byFile = await (await ask(constatId, doc!.sha256)).json();
  assert.equal([byFile.match, byFile.matched, byFile.documentVersion], [true, 'document', 1]);

  const wrong = await ask(constatId, 'f'.repeat(64));
  const unknown = await ask(randomUUID(), hash);
  assert.is(wrong.status, 404);
  assert.is(unknown.status, 404);
  assert.equal(await wrong.json(), await unknown.json(), 'wrong hash and unknown id look alike');
  const wrongHtml = await (await ask(constatId, 'f'.repeat(64), false)).text();
  assert.match(wrongHtml, /Aucun constat ne correspond/);
  assert.not.match(wrongHtml, /Haddad|12345-115-16/);

  const malformed = await ask(constatId, 'nothex');
  assert.is(malformed.status, 400);
  assert.is((await malformed.json()).error.code, 'BAD_USER_INPUT');
  assert.is((await fetch(`${ctx.server.url}/verify/${constatId}`)).status, 400);
});

test('formVersions serve the Arabic labels of dz (boxes and fields) with the unverified note', async (ctx) => {
  const res = await gql(
    ctx.server.url,
    ctx.constat.tokenA,
    `{ formVersions { id languages note circumstances { id label(lang: "ar") labels { fr ar en } } labels { key label(lang: "ar") labels { fr } } } }`,
  );
  assert.not.ok(res.errors, JSON.stringify(res.errors));
  const dz = res.data!.formVersions.find((f: { id: string }) => f.id === 'dz');
  assert.equal(dz.languages, ['fr', 'ar']);
  assert.match(dz.note, /unverified/);
  assert.is(dz.circumstances.length, 23);
  for (const c of dz.circumstances) assert.match(c.label, /[\u0600-\u06FF]/, `box ${c.id}`);
  assert.is(dz.circumstances[0].labels.fr, "Heurtait à l'arrière, même sens, même file");
  const plate = dz.labels.find((l: { key: string }) => l.key === 'plate');
  assert.equal([plate.label, plate.labels.fr], ['رقم التسجيل', "N° d'immatriculation"]);
  const eu = res.data!.formVersions.find((f: { id: string }) => f.id === 'eu');
  assert.equal(eu.languages, ['fr', 'en']);
  assert.is(eu.note, null);
});

test('a render that fails (media store unwritable) is retried and succeeds once it is back', async (ctx) => {
  // The file store cannot create reports/<id>/ while `reports` is a file. The reports already
  // stored wait aside and come back afterwards.
  const blocker = path.join(ctx.server.dataDir, 'media', 'objects', 'reports');
  const aside = `${blocker}.aside`;
  await rename(blocker, aside);
  await writeFile(blocker, 'not a folder');
  let removed = false;
  try {
    const constat = await finalizeConstat(ctx.server);
    const failed = await eventually(async () => {
      const [job] = await ctx.sql<{ attempts: number; last_error: string | null }[]>`
        select attempts, last_error from document_renders where constat_id = ${constat.constatId}`;
      return job && job.attempts >= 1 && job.last_error ? job : undefined;
    }, 60_000);
    assert.match(failed.last_error!, /file store|cannot write|ENOTDIR/i);
    const before = await readPdf(ctx.server, constat.tokenA, constat.constatId);
    assert.is(before.pdf, null, 'no report while the store refuses it');
    await rm(blocker, { force: true });
    removed = true;
    const pdf = await eventually(
      async () => (await readPdf(ctx.server, constat.tokenA, constat.constatId)).pdf ?? undefined,
      60_000,
      'the render was not retried',
    );
    assert.is(pdf.version, 1);
    const [left] =
      await ctx.sql`select 1 from document_renders where constat_id = ${constat.constatId}`;
    assert.is(left, undefined, 'the job is gone once recorded');
  } finally {
    if (!removed) await rm(blocker, { force: true });
    await mkdir(blocker, { recursive: true });
    for (const entry of await readdir(aside))
      await rename(path.join(aside, entry), path.join(blocker, entry));
    await rm(aside, { recursive: true, force: true });
  }
});

test('a re-render adds version 2 and version 1 stays retrievable', async (ctx) => {
  const { constatId, tokenA } = ctx.constat;
  const first = (await readPdf(ctx.server, tokenA, constatId)).pdf;
  // What an operator does after a template change: `constat rerender <id>`.
  const cli = spawnSync(process.execPath, ['bin/constat.js', 'rerender', constatId], {
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: ctx.server.databaseUrl!, LOG_LEVEL: 'warn' },
  });
  assert.is(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /queued 1 report render/);
  const refused = spawnSync(process.execPath, ['bin/constat.js', 'rerender', randomUUID()], {
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: ctx.server.databaseUrl!, LOG_LEVEL: 'warn' },
  });
  assert.is.not(refused.status, 0, 'an unknown constat is refused');
  assert.match(refused.stderr, /not a finalized constat/);
  const second = await eventually(async () => {
    const pdf = (await readPdf(ctx.server, tokenA, constatId)).pdf;
    return pdf.version === 2 ? pdf : undefined;
  }, 60_000);
  assert.is.not(second.sha256, first.sha256);
  const old = (await readPdf(ctx.server, tokenA, constatId, 1)).pdf;
  assert.is(old.sha256, first.sha256);
  const bytes = new Uint8Array(await (await fetch(old.url)).arrayBuffer());
  assert.is(createHash('sha256').update(bytes).digest('hex'), first.sha256);
  // --outdated: only reports whose latest version another template made.
  const rerender = (...args: string[]) =>
    spawnSync(process.execPath, ['bin/constat.js', 'rerender', ...args], {
      encoding: 'utf8',
      env: { ...process.env, DATABASE_URL: ctx.server.databaseUrl!, LOG_LEVEL: 'warn' },
    });
  assert.match(rerender('--outdated').stdout, /queued 0 /);
  await ctx.sql`update constat_documents set template = 'report-older' where constat_id = ${constatId} and version = 2`;
  assert.match(rerender('--outdated').stdout, /queued 1 /);
  await eventually(async () => {
    const pdf = (await readPdf(ctx.server, tokenA, constatId)).pdf;
    return pdf.version === 3 ? pdf : undefined;
  }, 60_000);
  const all = (await readPdf(ctx.server, tokenA, constatId)).documents;
  assert.equal(
    all.map((d: { version: number }) => d.version),
    [1, 2, 3],
  );
});

test('a render job left behind by a stopped instance is done by the next one', async (ctx) => {
  // A second constat, finalized while its render is made impossible: its job row is deleted
  // and its documents too, as if the instance died between commit and queueing.
  const constat = await finalizeConstat(ctx.server);
  await eventually(
    async () => (await readPdf(ctx.server, constat.tokenA, constat.constatId)).pdf ?? undefined,
    60_000,
  );
  await ctx.server.stopServer();
  await ctx.sql`delete from outbox where message_key = ${constat.constatId} and payload->>'type' = 'dz.constat.document_ready.v1'`;
  await ctx.sql`delete from constat_documents where constat_id = ${constat.constatId}`;
  const restarted = await startTestServer({
    databaseUrl: ctx.server.databaseUrl!,
    redisPrefix: ctx.server.redisPrefix,
    env: { REPORT_POLL_MS: '100' },
  });
  try {
    const pdf = await eventually(
      async () => (await readPdf(restarted, constat.tokenA, constat.constatId)).pdf ?? undefined,
      60_000,
      'the start-up scan did not render the missing report',
    );
    assert.is(pdf.version, 1);
  } finally {
    await restarted.stopServer();
  }
});

test.run();

const missing = suite<{ server: TestServer; constat: Finalized }>(
  'report without Chromium',
  {} as never,
);
setUp(missing, async (ctx) => {
  ctx.server = await startTestServer({
    database: 'pglite',
    hub: 'memory',
    env: { CHROMIUM_PATH: '/nonexistent/chromium' },
  });
  ctx.constat = await finalizeConstat(ctx.server);
});
missing.after(async (ctx) => ctx.server?.stop());

missing('/readyz reports the feature unavailable and the instance stays ready', async (ctx) => {
  const res = await fetch(`${ctx.server.url}/readyz`);
  assert.is(res.status, 200);
  const body = await res.json();
  assert.is(body.status, 'ready');
  assert.match(body.features.report, /^unavailable: .*CHROMIUM_PATH=\/nonexistent\/chromium/);
});

missing('a PDF request answers UNAVAILABLE; the rest of the constat still reads', async (ctx) => {
  const res = await gql(ctx.server.url, ctx.constat.tokenA, PDF, { id: ctx.constat.constatId });
  assert.is(errorCode(res), 'UNAVAILABLE');
  assert.match(res.errors![0]!.message, /Chromium not found/);
  const ok = await gql(
    ctx.server.url,
    ctx.constat.tokenA,
    `query($id: ID!) { constat(id: $id) { id contentHash } }`,
    {
      id: ctx.constat.constatId,
    },
  );
  assert.is(ok.data?.constat?.contentHash, ctx.constat.hash);
});

missing('`constat serve` starts and says so in one log line', async () => {
  const dataDir = `/tmp/constat-nochromium-${randomUUID()}`;
  // Embedded defaults, as `npm start` on a fresh machine: none of the runner's shared services.
  const server = await spawnServer({
    DATA_DIR: dataDir,
    CHROMIUM_PATH: '/nonexistent/chromium',
    DATABASE_URL: '',
    REDIS_URL: '',
    KAFKA_BROKERS: '',
  });
  try {
    const unavailable = () =>
      server
        .output()
        .split('\n')
        .filter((l) => l.includes('PDF reports are unavailable'));
    // Logs are written asynchronously: the line may follow the "listening" one.
    await eventually(() => (unavailable().length > 0 ? true : undefined), 10_000, 'no log line');
    await sleep(500);
    const lines = unavailable();
    assert.is(lines.length, 1, server.output());
    assert.match(lines[0]!, /CHROMIUM_PATH=\/nonexistent\/chromium/);
  } finally {
    await server.stop();
    await import('node:fs/promises').then((fs) => fs.rm(dataDir, { recursive: true, force: true }));
  }
});

missing.run();

/** Live processes whose parent is `pid` (a zombie waiting to be reaped counts as gone). */
async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // "pid (comm) state ppid …": comm may hold spaces, so read after its closing parenthesis.
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(ppid) === pid && state !== 'Z') out.push(Number(entry));
  }
  return out;
}

async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
}

const crash = suite('report browser and its server');

crash('a server killed with SIGKILL takes its report browser with it', async () => {
  const dataDir = `/tmp/constat-crash-${randomUUID()}`;
  const server = await spawnServer({
    DATA_DIR: dataDir,
    DATABASE_URL: '',
    REDIS_URL: '',
    KAFKA_BROKERS: '',
    REPORT_POLL_MS: '100',
  });
  try {
    const constat = await finalizeConstat(server);
    await eventually(
      async () =>
        (await gql(server.url, constat.tokenA, PDF, { id: constat.constatId })).data?.constat
          ?.pdf ?? undefined,
      60_000,
      'the report was never printed',
    );
    const browsers = await childrenOf(server.pid);
    assert.ok(browsers.length > 0, 'the server has its browser running');
    await server.kill('SIGKILL');
    await eventually(
      async () => ((await Promise.all(browsers.map(alive))).some(Boolean) ? undefined : true),
      15_000,
      'the report browser outlived its server',
    );
  } finally {
    await server.stop().catch(() => {});
    await rm(dataDir, { recursive: true, force: true });
  }
});

crash.run();
