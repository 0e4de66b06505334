/**
 * The embedded store: objects as files under `<DATA_DIR>/media/objects/<key>`, their content
 * type beside them under `meta/`. Writes go to a temporary file renamed into place, so a crash
 * never leaves half an object under its key. The server itself serves the signed upload and
 * download URLs (server/media-routes.ts).
 */
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import {
  assertKey,
  MediaStoreError,
  type ListedObject,
  type MediaStore,
  type StoredObject,
  type UploadRequest,
  type UploadTarget,
} from './media-store.js';
import { signedMediaPath } from './signed-url.js';

export interface FileStoreOptions {
  /** Folder that holds `objects/`, `meta/` and `tmp/`. */
  root: string;
  /** HMAC key of the signed URLs; every instance sharing the folder must share it. */
  urlSecret: string;
  /** Origin the signed URLs point at (`http://host:port`), read when a URL is made. */
  baseUrl: () => string;
}

export class FileMediaStore implements MediaStore {
  readonly kind = 'files' as const;
  private readonly objects: string;
  private readonly meta: string;
  private readonly tmp: string;

  constructor(private readonly options: FileStoreOptions) {
    this.objects = path.join(options.root, 'objects');
    this.meta = path.join(options.root, 'meta');
    this.tmp = path.join(options.root, 'tmp');
  }

  private paths(key: string): { object: string; meta: string } {
    assertKey(key);
    return { object: path.join(this.objects, key), meta: path.join(this.meta, `${key}.json`) };
  }

  async put(key: string, body: Uint8Array, contentType: string): Promise<void> {
    const p = this.paths(key);
    try {
      await mkdir(this.tmp, { recursive: true });
      await mkdir(path.dirname(p.object), { recursive: true });
      await mkdir(path.dirname(p.meta), { recursive: true });
      // The type is written first: an object never exists without its metadata.
      await this.atomicWrite(p.meta, Buffer.from(JSON.stringify({ contentType })));
      await this.atomicWrite(p.object, body);
    } catch (err) {
      throw new MediaStoreError(`file store: cannot write ${key}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  private async atomicWrite(target: string, body: Uint8Array): Promise<void> {
    const temporary = path.join(this.tmp, randomUUID());
    const handle = await open(temporary, 'wx');
    try {
      await handle.writeFile(body);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, target);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const p = this.paths(key);
    try {
      return new Uint8Array(await readFile(p.object));
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw new MediaStoreError(`file store: cannot read ${key}`, { cause: err });
    }
  }

  async head(key: string): Promise<StoredObject | undefined> {
    const p = this.paths(key);
    try {
      const info = await stat(p.object);
      const result: StoredObject = { byteSize: info.size };
      const contentType = await readFile(p.meta, 'utf8').then(
        (text) => (JSON.parse(text) as { contentType?: string }).contentType,
        () => undefined,
      );
      if (contentType) result.contentType = contentType;
      return result;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw new MediaStoreError(`file store: cannot stat ${key}`, { cause: err });
    }
  }

  async delete(key: string): Promise<void> {
    const p = this.paths(key);
    await rm(p.object, { force: true });
    await rm(p.meta, { force: true });
  }

  async downloadUrl(key: string, ttlSeconds: number): Promise<string> {
    assertKey(key);
    const expires = Math.floor(Date.now() / 1000) + ttlSeconds;
    return (
      this.options.baseUrl() +
      signedMediaPath({ method: 'GET', key, expires }, this.options.urlSecret)
    );
  }

  async uploadTarget(
    key: string,
    request: UploadRequest,
    ttlSeconds: number,
  ): Promise<UploadTarget> {
    assertKey(key);
    const expires = Math.floor(Date.now() / 1000) + ttlSeconds;
    const grant = { method: 'PUT' as const, key, expires, ...request };
    return {
      url: this.options.baseUrl() + signedMediaPath(grant, this.options.urlSecret),
      method: 'PUT',
      // Same headers as a presigned S3 PUT: the server's route is write-once too.
      headers: [
        { name: 'content-type', value: request.contentType },
        { name: 'if-none-match', value: '*' },
      ],
    };
  }

  async *list(prefix: string): AsyncIterable<ListedObject> {
    // Iterative walk: the folder depth is bounded by the keys the server builds, but a stack
    // keeps it that way whatever lands in the folder.
    const pending = [path.join(this.objects, prefix)];
    while (pending.length > 0) {
      const dir = pending.pop()!;
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isMissing(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
        throw new MediaStoreError(`file store: cannot list ${prefix}`, { cause: err });
      }
      for (const entry of entries) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) pending.push(full);
        else if (entry.isFile()) {
          const info = await stat(full).catch(() => undefined);
          if (!info) continue;
          const key = path.relative(this.objects, full).split(path.sep).join('/');
          yield { key, byteSize: info.size, modifiedAt: info.mtime };
        }
      }
    }
  }

  async ready(): Promise<boolean> {
    try {
      await mkdir(this.tmp, { recursive: true });
      const probe = path.join(this.tmp, `ready-${randomUUID()}`);
      await writeFile(probe, '');
      await rm(probe, { force: true });
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {}
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
