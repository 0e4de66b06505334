/**
 * The model files both engines read: `fra` and `ara` "best_int" from the `@tesseract.js-data`
 * npm packages, unpacked once into one folder (the native command needs plain
 * `.traineddata` files in a single `--tessdata-dir`). Local files only; nothing is fetched.
 */
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { randomUUID } from 'node:crypto';

const require = createRequire(import.meta.url);
const MODEL = '4.0.0_best_int';
const LANGS = ['fra', 'ara'] as const;

/** The gzipped model shipped by the npm package of `lang`. */
export function packagedModel(lang: (typeof LANGS)[number]): string {
  const pkg = path.dirname(require.resolve(`@tesseract.js-data/${lang}/package.json`));
  return path.join(pkg, MODEL, `${lang}.traineddata.gz`);
}

/** Unpacks the models into `<cacheDir>/tessdata-<model>/` unless already there; returns it. */
export async function prepareTessdata(cacheDir: string): Promise<string> {
  const dir = path.join(cacheDir, `tessdata-${MODEL}`);
  await mkdir(dir, { recursive: true });
  for (const lang of LANGS) {
    const target = path.join(dir, `${lang}.traineddata`);
    const source = packagedModel(lang);
    if (existsSync(target) && (await stat(target)).mtimeMs >= (await stat(source)).mtimeMs) {
      continue;
    }
    // Unpacked beside, renamed into place: a crash never leaves half a model under its name.
    const partial = `${target}.${randomUUID()}.part`;
    await pipeline(createReadStream(source), createGunzip(), createWriteStream(partial));
    await rename(partial, target);
  }
  return dir;
}
