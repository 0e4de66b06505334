/**
 * The PDF report (this server only): PDFs per second from one warm browser, at the configured
 * concurrency, for a complete constat of the simulator's form content; and the time from
 * finalization to the PDF being recorded, one constat at a time on an embedded instance (so the
 * figure is the path — queue, render, store, record — not a backlog): a simulated pair fills
 * and signs, then an insurer's token polls `Constat.pdf`, and the latency is the report's
 * `createdAt` minus the constat's `finalizedAt`, both server times.
 */
import { pino } from 'pino';
import { BrowserPool } from '../../report/browser-pool.js';
import { chromiumPath } from '../../report/chromium.js';
import { ReportRenderer } from '../../report/report-renderer.js';
import { hashContent } from '../../constat/content-hash.js';
import { mintDevelopmentToken } from '../../server/auth.js';
import type { StoredConstat } from '../../persistence/constats-repository.js';
import { startEmbeddedServer } from '../sim/server.js';
import { fanoutTally, runPair } from '../sim/pair.js';
import { seededRandom } from '../sim/random.js';
import { mustGql } from '../../client/graphql.js';
import { formContent } from './finalize.js';
import { percentiles, type Percentiles } from './stats.js';
import { BENCH_SECRET } from './targets.js';

export interface ReportsResult {
  renders: number;
  concurrency: number;
  /** Browser launch and the first PDF (ms). */
  coldFirstPdfMs: number;
  /** PDFs per second with the browser warm, `concurrency` at a time. */
  pdfsPerSecond: number;
  /** One PDF, warm (ms). */
  renderMs: Percentiles;
  /** Mean size of a PDF (KiB). */
  pdfKiB: number;
  finalizations: number;
  /** Finalization committed → PDF recorded (ms), one constat at a time. */
  readyMs: Percentiles;
}

async function fixture(i: number): Promise<StoredConstat> {
  const content = await formContent(i);
  const hash = hashContent(content);
  const signature = (role: 'A' | 'B') => ({
    hash,
    signature: Buffer.alloc(64, i).toString('base64'),
    deviceId: `bench-${role}`,
    userId: `bench-${role}`,
    publicKey: Buffer.alloc(32, role === 'A' ? 1 : 2).toString('base64'),
    signedAt: new Date().toISOString(),
  });
  return {
    id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    sessionId: `bench-${i}`,
    formVersion: 'dz',
    content,
    canonicalJson: '',
    contentHash: hash,
    snapshot: new Uint8Array(),
    signatures: { A: signature('A'), B: signature('B') },
    partyAUser: 'bench-A',
    partyBUser: 'bench-B',
    insurerA: 'saa',
    insurerB: 'trust',
    signedAt: new Date(),
    finalizedAt: new Date(),
  };
}

async function measureRenders(renders: number, concurrency: number) {
  const executablePath = chromiumPath();
  if (!executablePath)
    throw new Error('Chromium not found (install chromium or set CHROMIUM_PATH)');
  const pool = new BrowserPool({
    executablePath,
    concurrency,
    timeoutMs: 60_000,
    logger: pino({ level: 'error' }),
  });
  try {
    const renderer = new ReportRenderer({
      pool,
      insurerName: (uid) => uid.toUpperCase(),
      publicUrl: () => 'https://constat.example.dz',
    });
    const constats = await Promise.all(Array.from({ length: renders }, (_, i) => fixture(i)));
    const cold = performance.now();
    await renderer.render(constats[0]!);
    const coldFirstPdfMs = performance.now() - cold;
    const samples: number[] = [];
    let bytes = 0;
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < renders; i = next++) {
          const t = performance.now();
          bytes += (await renderer.render(constats[i]!)).byteLength;
          samples.push(performance.now() - t);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    return {
      coldFirstPdfMs,
      pdfsPerSecond: renders / seconds,
      renderMs: percentiles(samples),
      pdfKiB: bytes / renders / 1024,
    };
  } finally {
    await pool.close();
  }
}

const PDF_READY = `query($id: ID!) { constat(id: $id) { finalizedAt pdf { createdAt } } }`;

async function measureReady(finalizations: number): Promise<Percentiles> {
  const server = await startEmbeddedServer({
    AUTH_JWT_SECRET: BENCH_SECRET,
    REPORT_POLL_MS: '1000',
  });
  try {
    // Both vehicles insured by `saa`: its staff may read every constat of the run.
    const insurer = await mintDevelopmentToken({
      secret: BENCH_SECRET,
      userId: 'bench-saa',
      deviceId: 'desk',
      roles: ['insurer:saa'],
    });
    const samples: number[] = [];
    for (let i = 0; i < finalizations; i++) {
      const pair = await runPair({
        index: i,
        rng: seededRandom(`reports-${i}`),
        urls: { a: server.url, b: server.url },
        secret: BENCH_SECRET,
        insurers: ['saa'],
        offline: false,
        tamper: false,
        updatesPerSecond: 500,
        kafka: undefined,
        fanout: fanoutTally(),
      });
      if (!pair.constatId) throw new Error(`pair ${i} failed: ${pair.failure?.reason}`);
      for (const deadline = Date.now() + 60_000; ;) {
        const { constat } = await mustGql<{
          constat: { finalizedAt: string; pdf: { createdAt: string } | null };
        }>('constat', server.url, insurer, PDF_READY, { id: pair.constatId });
        if (constat.pdf) {
          samples.push(Date.parse(constat.pdf.createdAt) - Date.parse(constat.finalizedAt));
          break;
        }
        if (Date.now() > deadline) throw new Error(`no PDF for ${pair.constatId} after 60 s`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    return percentiles(samples);
  } finally {
    await server.stop();
  }
}

export async function measureReports(opts: {
  renders: number;
  concurrency: number;
  finalizations: number;
}): Promise<ReportsResult> {
  const renders = await measureRenders(opts.renders, opts.concurrency);
  const readyMs = await measureReady(opts.finalizations);
  return { ...opts, ...renders, readyMs };
}
