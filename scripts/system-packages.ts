/**
 * Debian packages some features need and npm cannot bring: headless Chromium (the PDF report
 * and the reference app's browser tests), Arabic and Latin fonts for it, poppler's
 * pdftoppm/pdftotext (the report's tests) and the `tesseract` command (the AI service's faster
 * OCR engine). `npm test` installs what is missing when it runs as root (CI and the
 * development machines); the server never installs anything: it looks for
 * the programs at start and reports what it found in `/readyz`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { DEBIAN_CHROMIUM } from '../report/chromium.js';

export { chromiumPath } from '../report/chromium.js';

export interface SystemPackage {
  /** Debian package name. */
  name: string;
  /** A file the package installs: present means installed. */
  provides: string;
}

export const SYSTEM_PACKAGES: readonly SystemPackage[] = [
  { name: 'chromium', provides: DEBIAN_CHROMIUM },
  {
    name: 'fonts-noto-core',
    provides: '/usr/share/fonts/truetype/noto/NotoNaskhArabic-Regular.ttf',
  },
  {
    name: 'fonts-hosny-amiri',
    provides: '/usr/share/fonts/opentype/fonts-hosny-amiri/Amiri-Regular.ttf',
  },
  { name: 'poppler-utils', provides: '/usr/bin/pdftoppm' },
  // The AI service's faster OCR engine (ai/ocr/native-engine.ts); tesseract.js otherwise.
  { name: 'tesseract-ocr', provides: '/usr/bin/tesseract' },
];

export function missingSystemPackages(): SystemPackage[] {
  return SYSTEM_PACKAGES.filter((p) => !existsSync(p.provides));
}

/**
 * Installs the missing packages with apt-get (root only). Returns what is still missing, so
 * the caller can say so; never throws.
 */
export function installSystemPackages(log: (line: string) => void): SystemPackage[] {
  const missing = missingSystemPackages();
  if (missing.length === 0) return [];
  const names = missing.map((p) => p.name).join(' ');
  if (process.getuid?.() !== 0) {
    log(`missing Debian packages (install them as root): ${names}`);
    return missing;
  }
  log(`installing Debian packages (once): ${names}…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update'], { encoding: 'utf8', env });
  if (update.status !== 0) log(`apt-get update failed: ${update.stderr?.trim().split('\n').pop()}`);
  const install = spawnSync(
    'apt-get',
    ['install', '-y', '--no-install-recommends', ...missing.map((p) => p.name)],
    { encoding: 'utf8', env },
  );
  if (install.status !== 0)
    log(`apt-get install failed: ${install.stderr?.trim().split('\n').pop()}`);
  return missingSystemPackages();
}
