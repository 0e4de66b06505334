/** The one place a media store is created from configuration, once per server instance. */
import type { MediaStore } from './media-store.js';
import { FileMediaStore } from './file-store.js';
import { S3MediaStore, type S3StoreOptions } from './s3-store.js';

export type MediaStoreConfig =
  { kind: 'files'; root: string; urlSecret: string } | ({ kind: 's3' } & S3StoreOptions);

/** `baseUrl` gives the origin of the server's own media URLs (the file store serves them). */
export function createMediaStore(config: MediaStoreConfig, baseUrl: () => string): MediaStore {
  if (config.kind === 's3') {
    const { kind: _kind, ...options } = config;
    return new S3MediaStore(options);
  }
  return new FileMediaStore({
    root: config.root,
    urlSecret: config.urlSecret,
    baseUrl,
  });
}
