/**
 * One interface over the two OCR engines: Debian's `tesseract` command when it is installed
 * (twice as fast and half the memory on a full page), tesseract.js (WASM, in worker threads)
 * otherwise. Both read the same model files, the "best_int" French and Arabic models shipped by
 * the `@tesseract.js-data/*` npm packages, so nothing is downloaded at run time and both
 * engines give comparable text. Work runs off the event loop (a child process or a worker
 * thread), at most `concurrency` documents at once, each within `timeoutMs`.
 */
import { existsSync } from 'node:fs';
import { prepareTessdata } from './tessdata.js';
import { NativeEngine } from './native-engine.js';
import { WasmEngine } from './wasm-engine.js';

export type EngineName = 'native' | 'wasm';
export type Languages = 'fra+ara' | 'fra';

export interface OcrEngine {
  readonly name: EngineName;
  /** The engine's own version, for logs and /readyz. */
  readonly version: string;
  /**
   * Text of a prepared (grayscale PNG) image, French and Arabic together by default; French
   * alone is the second look when the bilingual pass lost a Latin field (mixed lines confuse
   * the Arabic model now and then).
   */
  recognize(png: Buffer, languages?: Languages): Promise<string>;
  close(): Promise<void>;
}

/** The engine failed or took too long on one document: that document is unreadable. */
export class OcrEngineError extends Error {
  constructor(
    readonly reason: 'timeout' | 'failed',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'OcrEngineError';
  }
}

export interface EngineSettings {
  /** `auto`: native when its command exists, else WASM. */
  engine: 'auto' | EngineName;
  /** The `tesseract` command; absent: Debian's, when installed. */
  tesseractPath: string | undefined;
  concurrency: number;
  timeoutMs: number;
  /** Where the model files are unpacked for both engines (no download: from node_modules). */
  cacheDir: string;
}

export const DEBIAN_TESSERACT = '/usr/bin/tesseract';

/** `OCR_TESSERACT_PATH` when set (and present), else Debian's when installed. */
export function tesseractCommand(settings: Pick<EngineSettings, 'tesseractPath'>) {
  const candidate = settings.tesseractPath ?? DEBIAN_TESSERACT;
  return existsSync(candidate) ? candidate : undefined;
}

/** Opens the engine the settings and the machine allow; says which in `describe`. */
export async function openEngine(settings: EngineSettings): Promise<OcrEngine> {
  const tessdata = await prepareTessdata(settings.cacheDir);
  const command = tesseractCommand(settings);
  const wantNative = settings.engine === 'native' || (settings.engine === 'auto' && command);
  if (wantNative) {
    if (!command) {
      throw new Error(
        `OCR_ENGINE=native but no tesseract command at ${settings.tesseractPath ?? DEBIAN_TESSERACT} (Debian tesseract-ocr)`,
      );
    }
    return NativeEngine.open({ ...settings, command, tessdata });
  }
  return WasmEngine.open({ ...settings, tessdata });
}
