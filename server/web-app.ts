/**
 * The reference web app at `/app/`. Its sources live in `web/` and are bundled with esbuild
 * inside this process, once, on the first request for the app: a fresh clone needs no build
 * step (`npm install && npm start` serves it), no built file can go stale beside the sources,
 * and instances or tests that never serve the app never pay for the bundle (~1 s of CPU).
 * Files are kept in memory and served only by exact name, so no request path reaches the disk.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono } from 'hono';
import type { Logger } from 'pino';
import { ConstatError } from '../constat/errors.js';

export const DEFAULT_WEB_DIR = fileURLToPath(new URL('../web', import.meta.url));

interface Asset {
  body: Uint8Array<ArrayBuffer>;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.webmanifest': 'application/manifest+json',
  '.json': 'application/json',
};

// Scripts come from the app's own files only. Upload slots and photo download URLs may point
// at an object store elsewhere (S3), hence `connect-src *` and `img-src *`; QR codes and local
// thumbnails are data: and blob: images; the QR scanner's decoder runs in a blob: worker.
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  'img-src * data: blob:',
  "media-src 'self' blob:",
  "worker-src 'self' blob:",
  'connect-src *',
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

export interface WebAppOptions {
  /** The app's folder: `src/main.ts` is bundled, `public/` is served as is. */
  dir?: string;
  logger: Logger;
}

/** Builds the app's files in memory: the bundle and its chunks, and everything in `public/`. */
export async function buildWebApp(dir: string): Promise<Map<string, Asset>> {
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: { main: path.join(dir, 'src', 'main.ts') },
    bundle: true,
    splitting: true,
    format: 'esm',
    target: ['chrome110', 'firefox115', 'safari16'],
    minify: true,
    sourcemap: false,
    outdir: '/app',
    write: false,
    logLevel: 'silent',
    legalComments: 'none',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const assets = new Map<string, Asset>();
  for (const file of result.outputFiles) {
    assets.set(
      path.posix.relative('/app', file.path),
      asset(new Uint8Array(file.contents), file.path),
    );
  }
  const publicDir = path.join(dir, 'public');
  for (const name of await readdir(publicDir)) {
    if (!TYPES[path.extname(name)]) continue;
    assets.set(name, asset(await readFile(path.join(publicDir, name)), name));
  }
  return assets;
}

function asset(body: Uint8Array<ArrayBuffer>, name: string): Asset {
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
  return { body, type: TYPES[path.extname(name)] ?? 'application/octet-stream', etag };
}

export function createWebAppRoutes(options: WebAppOptions): Hono {
  const dir = options.dir ?? DEFAULT_WEB_DIR;
  let built: Promise<Map<string, Asset>> | undefined;
  // Concurrent first requests share one build; a failed build is retried by the next request.
  const assets = () =>
    (built ??= buildWebApp(dir).catch((err: unknown) => {
      built = undefined;
      options.logger.error({ err }, 'building the web app failed');
      throw new ConstatError('UNAVAILABLE', 'the web app could not be built; see the server log');
    }));

  const routes = new Hono();
  routes.get('/app', (c) => c.redirect('/app/', 301));
  routes.get('/app/*', async (c) => {
    const name = c.req.path.slice('/app/'.length) || 'index.html';
    const files = await assets();
    // Unknown paths inside the app are client-side routes: they get the page itself.
    const file = files.get(name) ?? (name.includes('.') ? undefined : files.get('index.html'));
    if (!file) throw new ConstatError('NOT_FOUND', `no such file in the app: ${name}`);
    c.header('Content-Type', file.type);
    c.header('ETag', file.etag);
    c.header('Cache-Control', 'no-cache');
    c.header('Content-Security-Policy', CSP);
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    c.header('Permissions-Policy', 'camera=(self), geolocation=(self)');
    if (c.req.header('if-none-match') === file.etag) return c.body(null, 304);
    return c.body(file.body);
  });
  return routes;
}
