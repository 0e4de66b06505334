/**
 * Photos, for this server only, once per store: the embedded file store (the server receives
 * the bytes itself through its signed URL) and S3 (the phone sends them to a presigned URL; the
 * S3 server is S3_ENDPOINT, or S3Proxy started for the run).
 *
 * - Upload throughput: `uploads` generated 2 MB JPEGs, `concurrency` at a time, each through
 *   its slot's URL (the PUT only; the slot request is not timed).
 * - Added finalization time: simulated pairs (the simulator's, typing fast) finalized with no
 *   photo and with 8 (4 per party, 2 MB each); the figure is sign → both phones told
 *   `finalized`, whose difference is what checking and confirming 8 photos costs.
 */
import { randomBytes } from 'node:crypto';
import { startEmbeddedServer, type EmbeddedServer } from '../sim/server.js';
import { developmentSecret, openAndJoin } from '../../client/graphql.js';
import { requestUpload, uploadBytes } from '../sim/attach.js';
import { makePhoto } from '../sim/photo.js';
import { fanoutTally, runPair } from '../sim/pair.js';
import { seededRandom } from '../sim/random.js';
import { COMPANIES } from '../../integrations/companies.js';
import {
  createTestBucket,
  s3AccountFromEnv,
  startS3Proxy,
  type S3Proxy,
} from '../s3proxy/s3proxy.js';
import { percentiles, type Percentiles } from './stats.js';

export interface MediaBenchOptions {
  uploads: number;
  concurrency: number;
  /** Pairs finalized per variant (no photo, 8 photos) and store. */
  pairs: number;
  photoBytes: number;
  log?: (line: string) => void;
}

export interface StoreFigures {
  store: 'files' | 's3';
  /** How the bytes travel: through this server, or straight to the S3 server. */
  path: 'server' | 'presigned';
  uploadMBPerSecond: number;
  uploadMs: Percentiles;
  /** Sign → finalized, median, without photos and with 8. */
  finalizeMs: { none: number; eight: number; added: number };
  failures: number;
}

export interface MediaBenchResult {
  photoBytes: number;
  uploads: number;
  concurrency: number;
  pairs: number;
  stores: StoreFigures[];
}

const PHOTOS_PER_PARTY = 4;

export async function measureMedia(opts: MediaBenchOptions): Promise<MediaBenchResult> {
  const log = opts.log ?? (() => {});
  const secret = developmentSecret();
  let proxy: S3Proxy | undefined;
  let account = s3AccountFromEnv();
  const stores: StoreFigures[] = [];
  try {
    if (!account) {
      log('starting S3Proxy for the presigned path…');
      proxy = await startS3Proxy();
      account = { ...proxy };
    }
    for (const store of ['files', 's3'] as const) {
      const env: Record<string, string> = {
        AUTH_JWT_SECRET: secret,
        MEDIA_MAX_PER_PARTY: String(opts.uploads + PHOTOS_PER_PARTY),
        ...(store === 's3' ? await createTestBucket(account) : {}),
      };
      const server = await startEmbeddedServer(env);
      try {
        const upload = await measureUploads(server, secret, opts);
        const finalize = await measureFinalize(server, secret, opts);
        stores.push({
          store,
          path: store === 'files' ? 'server' : 'presigned',
          ...upload,
          finalizeMs: finalize.ms,
          failures: upload.failures + finalize.failures,
        });
        log(`media ${store}: ${JSON.stringify(stores.at(-1))}`);
      } finally {
        await server.stop();
      }
    }
  } finally {
    await proxy?.stop();
  }
  return {
    photoBytes: opts.photoBytes,
    uploads: opts.uploads,
    concurrency: opts.concurrency,
    pairs: opts.pairs,
    stores,
  };
}

async function measureUploads(
  server: EmbeddedServer,
  secret: string,
  opts: MediaBenchOptions,
): Promise<{ uploadMBPerSecond: number; uploadMs: Percentiles; failures: number }> {
  const pair = await openAndJoin(
    { a: server.url, b: server.url },
    secret,
    `media-${randomBytes(3).toString('hex')}`,
  );
  // Photos and slots first: only the transfers are timed.
  const slots = [];
  for (let i = 0; i < opts.uploads; i++) {
    const photo = makePhoto({ byteSize: opts.photoBytes });
    const res = await requestUpload(server.url, pair.tokenA, pair.sessionId, {
      kind: 'damage',
      contentType: photo.contentType,
      byteSize: photo.bytes.byteLength,
      sha256: photo.sha256,
    });
    if (res.errors) throw new Error(`requestUpload: ${res.errors[0]!.message}`);
    slots.push({ slot: res.data!.requestUpload, bytes: photo.bytes });
  }
  const times: number[] = [];
  let failures = 0;
  const queue = [...slots];
  const started = performance.now();
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      const t = performance.now();
      const status = await uploadBytes(next.slot, next.bytes).catch(() => 0);
      if (status === 200) times.push(performance.now() - t);
      else failures++;
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  return {
    uploadMBPerSecond: (times.length * opts.photoBytes) / 1e6 / seconds,
    uploadMs: percentiles(times),
    failures,
  };
}

async function measureFinalize(
  server: EmbeddedServer,
  secret: string,
  opts: MediaBenchOptions,
): Promise<{ ms: StoreFigures['finalizeMs']; failures: number }> {
  const rng = seededRandom('bench-media');
  const insurers = COMPANIES.map((c) => c.uid);
  let failures = 0;
  const run = async (perParty: number, index: number) => {
    const result = await runPair({
      index,
      rng: rng.fork(`pair-${index}`),
      urls: { a: server.url, b: server.url },
      secret,
      insurers,
      offline: false,
      tamper: false,
      updatesPerSecond: 1_000,
      kafka: undefined,
      fanout: fanoutTally(),
      photos: { perParty, minBytes: opts.photoBytes, maxBytes: opts.photoBytes },
    });
    if (result.failure || result.finalizeMs === undefined) {
      failures++;
      return undefined;
    }
    return result.finalizeMs;
  };
  const none: number[] = [];
  const eight: number[] = [];
  // Alternated, so a change in the machine's load weighs on both alike.
  for (let i = 0; i < opts.pairs; i++) {
    const a = await run(0, 2 * i);
    if (a !== undefined) none.push(a);
    const b = await run(PHOTOS_PER_PARTY, 2 * i + 1);
    if (b !== undefined) eight.push(b);
  }
  const median = (xs: number[]) => percentiles(xs).p50;
  return {
    ms: { none: median(none), eight: median(eight), added: median(eight) - median(none) },
    failures,
  };
}

export function formatMedia(result: MediaBenchResult): string[] {
  const mb = (result.photoBytes / 1e6).toFixed(1);
  const lines = [
    '',
    `photos (${mb} MB each; ${result.uploads} uploads, ${result.concurrency} at a time; finalization: median of ${result.pairs} pairs each):`,
  ];
  for (const s of result.stores) {
    const label =
      s.path === 'server' ? 'file store, upload through the server' : 'S3, presigned upload';
    lines.push(
      `  ${label.padEnd(38)} ${s.uploadMBPerSecond.toFixed(1)} MB/s, PUT p50 ${Math.round(s.uploadMs.p50)} ms p95 ${Math.round(s.uploadMs.p95)} ms; ` +
        `sign → finalized ${Math.round(s.finalizeMs.none)} ms without photos, ${Math.round(s.finalizeMs.eight)} ms with 8 (+${Math.round(s.finalizeMs.added)} ms)` +
        `${s.failures ? `; ${s.failures} failed` : ''}`,
    );
  }
  return lines;
}
