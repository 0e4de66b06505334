/**
 * OCR of the drivers' papers (`npm run bench -- --ocr`): the specimen papers the tests use
 * (tests/fixtures/ocr/specimens.ts), read by each engine this machine has: Debian's
 * `tesseract` when installed, tesseract.js always. Per engine: papers per second, time per
 * paper p50/p99 (prepare + OCR + extract, as the function does it), and field accuracy on
 * the clean and the degraded specimens against their ground truth. One warm-up paper first,
 * so the WASM engine's model loading is not counted.
 */
import os from 'node:os';
import path from 'node:path';
import { openEngine, tesseractCommand, type EngineName } from '../../ai/ocr/engine.js';
import { prepareImage } from '../../ai/ocr/normalise.js';
import { readPaper } from '../../ai/ocr/reader.js';
import { specimens, type Specimen } from '../../tests/fixtures/ocr/specimens.js';
import { percentiles, type Percentiles } from './stats.js';

export interface OcrEngineBench {
  engine: EngineName;
  version: string;
  papers: number;
  concurrency: number;
  papersPerSecond: number;
  msPerPaper: Percentiles;
  /** Fields read right / fields in the ground truth. */
  accuracy: { clean: number; degraded: number };
  /** The fields read wrong on the degraded specimens (name: read ≠ truth). */
  misses: string[];
  loadAverage: { before: number; after: number };
}

export interface OcrBenchResult {
  engines: OcrEngineBench[];
}

const LIMITS = { maxBytes: 15 * 1024 * 1024, maxPixels: 40_000_000 };

export async function measureOcr(opts: {
  /** Passes over the six specimens per engine. */
  rounds: number;
  concurrency: number;
  log: (line: string) => void;
}): Promise<OcrBenchResult> {
  const papers = await specimens();
  const names: EngineName[] = tesseractCommand({ tesseractPath: undefined })
    ? ['native', 'wasm']
    : ['wasm'];
  if (names.length === 1) opts.log('OCR: no tesseract command (Debian tesseract-ocr): WASM only');
  const engines: OcrEngineBench[] = [];
  for (const name of names) {
    engines.push(await measureEngine(name, papers, opts));
  }
  return { engines };
}

async function measureEngine(
  name: EngineName,
  papers: Specimen[],
  opts: { rounds: number; concurrency: number; log: (line: string) => void },
): Promise<OcrEngineBench> {
  const engine = await openEngine({
    engine: name,
    tesseractPath: undefined,
    concurrency: opts.concurrency,
    timeoutMs: 600_000,
    cacheDir: path.join(os.tmpdir(), 'constat-bench-ocr'),
  });
  const read = async (s: Specimen) => {
    const started = performance.now();
    const fields = await readPaper(engine, s.kind, await prepareImage(s.bytes, LIMITS));
    return { s, fields, ms: performance.now() - started };
  };
  try {
    await read(papers[0]!);
    const loadBefore = os.loadavg()[0]!;
    const queue = Array.from({ length: opts.rounds }, () => papers).flat();
    const done: Array<Awaited<ReturnType<typeof read>>> = [];
    const started = performance.now();
    await Promise.all(
      Array.from({ length: opts.concurrency }, async () => {
        for (let s = queue.shift(); s; s = queue.shift()) done.push(await read(s));
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const score = (degraded: boolean) => {
      let right = 0;
      let total = 0;
      for (const { s, fields } of done.filter((d) => d.s.degraded === degraded)) {
        for (const [field, value] of Object.entries(s.truth)) {
          total++;
          if (fields[field] === value) right++;
        }
      }
      return total === 0 ? NaN : right / total;
    };
    const misses = [
      ...new Set(
        done
          .filter((d) => d.s.degraded)
          .flatMap(({ s, fields }) =>
            Object.entries(s.truth)
              .filter(([f, v]) => fields[f] !== v)
              .map(([f, v]) => `${s.name} ${f}: ${fields[f] ?? '—'} ≠ ${v}`),
          ),
      ),
    ];
    const result: OcrEngineBench = {
      engine: name,
      version: engine.version,
      papers: done.length,
      concurrency: opts.concurrency,
      papersPerSecond: done.length / seconds,
      msPerPaper: percentiles(done.map((d) => d.ms)),
      accuracy: { clean: score(false), degraded: score(true) },
      misses,
      loadAverage: { before: loadBefore, after: os.loadavg()[0]! },
    };
    opts.log(
      `OCR ${name} (${engine.version}): ${done.length} papers, ${result.papersPerSecond.toFixed(2)} papers/s, ` +
        `p50 ${Math.round(result.msPerPaper.p50)} ms, p99 ${Math.round(result.msPerPaper.p99)} ms, ` +
        `fields right: clean ${(result.accuracy.clean * 100).toFixed(1)} %, degraded ${(result.accuracy.degraded * 100).toFixed(1)} %`,
    );
    return result;
  } finally {
    await engine.close();
  }
}
