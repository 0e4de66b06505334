/**
 * Where the headless Chromium that prints reports is. The server never installs it: it looks
 * here at start and reports what it found in `/readyz` (scripts/system-packages.ts lists the
 * Debian package the test runner installs).
 */
import { existsSync } from 'node:fs';

/** Debian's Chromium, where the `chromium` package puts it. */
export const DEBIAN_CHROMIUM = '/usr/bin/chromium';

/**
 * `CHROMIUM_PATH` when set (even if missing there: an operator who named a path meant that
 * one), else Debian's, else undefined.
 */
export function chromiumPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.CHROMIUM_PATH) return existsSync(env.CHROMIUM_PATH) ? env.CHROMIUM_PATH : undefined;
  return [DEBIAN_CHROMIUM, '/usr/bin/chromium-browser'].find((p) => existsSync(p));
}
