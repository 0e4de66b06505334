/**
 * The `tesseract` command (Debian `tesseract-ocr`, version 5), one child process per document:
 * the image on stdin, the text on stdout, killed at the time limit. One OpenMP thread each, so
 * `concurrency` documents use about `concurrency` cores.
 */
import { spawn, spawnSync } from 'node:child_process';
import { OcrEngineError, type Languages, type OcrEngine } from './engine.js';
import { Slots } from './slots.js';

/** More text than any card holds: a runaway output is cut, not buffered without end. */
const MAX_OUTPUT = 256 * 1024;

export interface NativeOptions {
  command: string;
  tessdata: string;
  concurrency: number;
  timeoutMs: number;
}

export class NativeEngine implements OcrEngine {
  readonly name = 'native' as const;
  readonly #slots: Slots;

  private constructor(
    private readonly options: NativeOptions,
    readonly version: string,
  ) {
    this.#slots = new Slots(options.concurrency);
  }

  static async open(options: NativeOptions): Promise<NativeEngine> {
    const probe = spawnSync(options.command, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    const version = `${probe.stdout ?? ''}${probe.stderr ?? ''}`.match(/tesseract\s+v?([\d.]+)/i);
    if (probe.status !== 0 || !version) {
      throw new Error(
        `${options.command} --version failed: ${probe.error?.message ?? probe.stderr}`,
      );
    }
    return new NativeEngine(options, `tesseract ${version[1]}`);
  }

  recognize(png: Buffer, languages: Languages = 'fra+ara'): Promise<string> {
    return this.#slots.run(() => this.#run(png, languages));
  }

  #run(png: Buffer, languages: Languages): Promise<string> {
    const { command, tessdata, timeoutMs } = this.options;
    const args = ['stdin', 'stdout', '--tessdata-dir', tessdata, '-l', languages, '--oem', '1'];
    return new Promise((resolve, reject) => {
      const child = spawn(command, args, {
        env: { ...process.env, OMP_THREAD_LIMIT: '1' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      let size = 0;
      let stderr = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new OcrEngineError('timeout', `OCR took longer than ${timeoutMs} ms`));
      }, timeoutMs);
      child.stdout.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_OUTPUT) out.push(chunk);
      });
      child.stderr.on('data', (chunk: Buffer) => {
        if (stderr.length < 4096) stderr += chunk.toString('utf8');
      });
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(new OcrEngineError('failed', `tesseract: ${err.message}`, { cause: err }));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve(Buffer.concat(out).toString('utf8'));
        else if (signal !== 'SIGKILL') {
          const last = stderr.trim().split('\n').pop() ?? '';
          reject(new OcrEngineError('failed', `tesseract exited with ${code ?? signal}: ${last}`));
        }
      });
      // A child that died early closes stdin: that error is the exit's, reported above.
      child.stdin.on('error', () => undefined);
      child.stdin.end(png);
    });
  }

  async close(): Promise<void> {}
}
