/**
 * The S3 server of the test run (S3_ENDPOINT and credentials, set by the test runner, which
 * starts S3Proxy when none is given) and a fresh bucket per call, so suites never share objects.
 */
import type { S3StoreOptions } from '../../media/s3-store.js';
import {
  createTestBucket,
  s3AccountFromEnv,
  type S3Account,
} from '../../scripts/s3proxy/s3proxy.js';

function account(): S3Account {
  const found = s3AccountFromEnv();
  if (!found) {
    throw new Error('S3_ENDPOINT is not set: run the suite through `npm test` (it starts S3Proxy)');
  }
  return found;
}

/** The server environment for `MEDIA_STORE=s3` on a bucket of its own. */
export function s3ServerEnv(endpoint?: string): Promise<Record<string, string>> {
  const a = account();
  return createTestBucket(a, endpoint ?? a.endpoint);
}

/** Store options on a bucket of its own. */
export async function s3TestStoreOptions(): Promise<S3StoreOptions> {
  const env = await s3ServerEnv();
  return {
    endpoint: env.S3_ENDPOINT,
    bucket: env.S3_BUCKET!,
    region: env.S3_REGION!,
    accessKeyId: env.S3_ACCESS_KEY_ID || undefined,
    secretAccessKey: env.S3_SECRET_ACCESS_KEY || undefined,
    forcePathStyle: true,
  };
}
