/**
 * The S3 server of the test run (S3_ENDPOINT and credentials, set by the test runner, which
 * starts S3Proxy when none is given) and a fresh bucket per call, so suites never share objects.
 */
import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { S3StoreOptions } from '../../media/s3-store.js';

export function s3Env(): Record<string, string> {
  const endpoint = process.env.S3_ENDPOINT;
  if (!endpoint) {
    throw new Error('S3_ENDPOINT is not set: run the suite through `npm test` (it starts S3Proxy)');
  }
  return {
    S3_ENDPOINT: endpoint,
    S3_REGION: process.env.S3_REGION || 'us-east-1',
    S3_ACCESS_KEY_ID: process.env.S3_ACCESS_KEY_ID ?? '',
    S3_SECRET_ACCESS_KEY: process.env.S3_SECRET_ACCESS_KEY ?? '',
  };
}

/** Creates a bucket of its own and returns the store options (and server env) that use it. */
export async function s3TestStoreOptions(endpoint?: string): Promise<S3StoreOptions> {
  const env = s3Env();
  const bucket = `constat-test-${randomBytes(6).toString('hex')}`;
  const options: S3StoreOptions = {
    endpoint: env.S3_ENDPOINT!,
    bucket,
    region: env.S3_REGION!,
    accessKeyId: env.S3_ACCESS_KEY_ID || undefined,
    secretAccessKey: env.S3_SECRET_ACCESS_KEY || undefined,
    forcePathStyle: true,
  };
  const client = new S3Client({
    endpoint: options.endpoint!,
    region: options.region,
    forcePathStyle: true,
    ...(options.accessKeyId && options.secretAccessKey
      ? {
          credentials: {
            accessKeyId: options.accessKeyId,
            secretAccessKey: options.secretAccessKey,
          },
        }
      : {}),
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    client.destroy();
  }
  return endpoint ? { ...options, endpoint } : options;
}

/** The server environment for `MEDIA_STORE=s3` on a bucket of its own. */
export async function s3ServerEnv(endpoint?: string): Promise<Record<string, string>> {
  const options = await s3TestStoreOptions();
  return {
    MEDIA_STORE: 's3',
    S3_ENDPOINT: endpoint ?? options.endpoint!,
    S3_BUCKET: options.bucket,
    S3_REGION: options.region,
    S3_ACCESS_KEY_ID: options.accessKeyId ?? '',
    S3_SECRET_ACCESS_KEY: options.secretAccessKey ?? '',
    S3_FORCE_PATH_STYLE: 'true',
  };
}
