/**
 * tesseract.js 7 (Tesseract compiled to WASM), each job in a worker thread: up to
 * `concurrency` workers per language set, started on first use and kept. A job over the time limit cannot be
 * interrupted inside WASM, so its worker is terminated and replaced.
 */
import { createRequire } from 'node:module';
import type { Worker } from 'tesseract.js';
import { OcrEngineError, type Languages, type OcrEngine } from './engine.js';
import { Slots } from './slots.js';

export interface WasmOptions {
  tessdata: string;
  concurrency: number;
  timeoutMs: number;
}

const version = (): string =>
  `tesseract.js ${(createRequire(import.meta.url)('tesseract.js/package.json') as { version: string }).version}`;

/** Workers of one language set: up to `size`, started on first use and kept. */
class WorkerPool {
  readonly #idle: Worker[] = [];
  readonly #waiting: Array<(w: Worker | undefined) => void> = [];
  #started = 0;
  #closed = false;

  constructor(
    private readonly languages: Languages,
    private readonly options: WasmOptions,
  ) {}

  spawn(): Promise<Worker> {
    this.#started++;
    // Loaded with the first worker: a server that reads no paper never needs it.
    return import('tesseract.js')
      .then(({ createWorker, OEM }) =>
        createWorker(this.languages.split('+'), OEM.LSTM_ONLY, {
          langPath: this.options.tessdata,
          gzip: false,
          // Models are read from the unpacked folder and never written anywhere else.
          cacheMethod: 'none',
        }),
      )
      .catch((err: unknown) => {
        this.#started--;
        throw err;
      });
  }

  async acquire(): Promise<Worker> {
    if (this.#closed) throw new OcrEngineError('failed', 'the OCR engine is closed');
    const idle = this.#idle.pop();
    if (idle) return idle;
    if (this.#started < this.options.concurrency) return this.spawn();
    const next = await new Promise<Worker | undefined>((resolve) => this.#waiting.push(resolve));
    return next ?? this.acquire();
  }

  release(worker: Worker): void {
    if (this.#closed) {
      void worker.terminate().catch(() => undefined);
      return;
    }
    const waiter = this.#waiting.shift();
    if (waiter) waiter(worker);
    else this.#idle.push(worker);
  }

  /** A worker was lost (timed out or broke): let one waiter start a fresh one. */
  forget(worker: Worker): void {
    this.#started--;
    void worker.terminate().catch(() => undefined);
    this.#waiting.shift()?.(undefined);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const w of this.#waiting.splice(0)) w(undefined);
    await Promise.all(this.#idle.splice(0).map((w) => w.terminate().catch(() => undefined)));
  }
}

export class WasmEngine implements OcrEngine {
  readonly name = 'wasm' as const;
  readonly version = version();
  readonly #pools = new Map<Languages, WorkerPool>();
  /** Documents at once over all language sets (each pool also caps its own workers). */
  readonly #slots: Slots;

  private constructor(private readonly options: WasmOptions) {
    this.#slots = new Slots(options.concurrency);
  }

  /**
   * Workers start on the first paper, not here: every server of a deployment (and of the test
   * suite) runs the AI service, and an idle worker holds its models (~100 MB).
   */
  static async open(options: WasmOptions): Promise<WasmEngine> {
    return new WasmEngine(options);
  }

  #pool(languages: Languages): WorkerPool {
    let pool = this.#pools.get(languages);
    if (!pool) this.#pools.set(languages, (pool = new WorkerPool(languages, this.options)));
    return pool;
  }

  recognize(png: Buffer, languages: Languages = 'fra+ara'): Promise<string> {
    return this.#slots.run(() => this.#run(png, this.#pool(languages)));
  }

  async #run(png: Buffer, pool: WorkerPool): Promise<string> {
    const worker = await pool.acquire();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new OcrEngineError('timeout', `OCR took longer than ${this.options.timeoutMs} ms`),
          ),
        this.options.timeoutMs,
      );
    });
    try {
      const result = await Promise.race([worker.recognize(png), timeout]);
      pool.release(worker);
      return result.data.text;
    } catch (err) {
      // The worker may still be busy (timeout) or broken (error): never reuse it.
      pool.forget(worker);
      if (err instanceof OcrEngineError) throw err;
      throw new OcrEngineError('failed', `tesseract.js: ${(err as Error).message}`, {
        cause: err,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((p) => p.close()));
  }
}
