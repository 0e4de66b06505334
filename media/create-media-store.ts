/** The one place a media store is created from configuration, once per server instance. */
import type { MediaStore } from './media-store.js';
import { FileMediaStore } from './file-store.js';
import type { S3StoreOptions } from './s3-store.js';

export type MediaStoreConfig =
  { kind: 'files'; root: string; urlSecret: string } | ({ kind: 's3' } & S3StoreOptions);

/** `baseUrl` gives the origin of the server's own media URLs (the file store serves them). */
export async function createMediaStore(
  config: MediaStoreConfig,
  baseUrl: () => string,
): Promise<MediaStore> {
  if (config.kind === 's3') {
    const { kind: _kind, ...options } = config;
    // The AWS SDK is loaded only when S3 is configured: most of a second of start-up otherwise.
    const { S3MediaStore } = await import('./s3-store.js');
    return new S3MediaStore(options);
  }
  return new FileMediaStore({
    root: config.root,
    urlSecret: config.urlSecret,
    baseUrl,
  });
}
