/**
 * Any S3-compatible service through the AWS SDK v3. Devices upload and download with presigned
 * URLs, so photo bytes never pass through the server. Path-style addressing is an option because
 * most self-hosted services (and S3Proxy in the tests) want it.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  assertKey,
  MediaStoreError,
  type ListedObject,
  type MediaStore,
  type StoredObject,
  type UploadRequest,
  type UploadTarget,
} from './media-store.js';

export interface S3StoreOptions {
  endpoint: string | undefined;
  bucket: string;
  region: string;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  forcePathStyle: boolean;
  /** Per-call timeout, so an unreachable store fails fast instead of hanging a request. */
  timeoutMs?: number;
}

export class S3MediaStore implements MediaStore {
  readonly kind = 's3' as const;
  private readonly client: S3Client;
  private readonly bucket: string;

  constructor(options: S3StoreOptions) {
    this.bucket = options.bucket;
    const timeout = options.timeoutMs ?? 10_000;
    this.client = new S3Client({
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.accessKeyId && options.secretAccessKey
        ? {
            credentials: {
              accessKeyId: options.accessKeyId,
              secretAccessKey: options.secretAccessKey,
            },
          }
        : {}),
      // Checksums on every request are the SDK's default since 3.729; several S3-compatible
      // services refuse the new headers, and presigned PUTs must not require them.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 2,
      requestHandler: { connectionTimeout: timeout, requestTimeout: timeout },
    });
  }

  private async call<T>(what: string, key: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw new MediaStoreError(`s3 store: ${what} ${key} failed: ${describe(err)}`, {
        cause: err,
      });
    }
  }

  async put(key: string, body: Uint8Array, contentType: string): Promise<void> {
    assertKey(key);
    await this.call('put', key, () =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentType: contentType,
          ContentLength: body.byteLength,
        }),
      ),
    );
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    assertKey(key);
    try {
      const result = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: key }),
      );
      return result.Body ? await result.Body.transformToByteArray() : new Uint8Array();
    } catch (err) {
      if (notFound(err)) return undefined;
      throw new MediaStoreError(`s3 store: get ${key} failed: ${describe(err)}`, { cause: err });
    }
  }

  async head(key: string): Promise<StoredObject | undefined> {
    assertKey(key);
    try {
      const result = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: key }),
      );
      const object: StoredObject = { byteSize: result.ContentLength ?? 0 };
      if (result.ContentType) object.contentType = result.ContentType;
      return object;
    } catch (err) {
      if (notFound(err)) return undefined;
      throw new MediaStoreError(`s3 store: head ${key} failed: ${describe(err)}`, { cause: err });
    }
  }

  async delete(key: string): Promise<void> {
    assertKey(key);
    await this.call('delete', key, () =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })),
    );
  }

  async downloadUrl(key: string, ttlSeconds: number): Promise<string> {
    assertKey(key);
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: key }), {
      expiresIn: ttlSeconds,
    });
  }

  async uploadTarget(
    key: string,
    request: UploadRequest,
    ttlSeconds: number,
  ): Promise<UploadTarget> {
    assertKey(key);
    // Type and length are signed: the store refuses a body of another size or type.
    const url = await getSignedUrl(
      this.client,
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        ContentType: request.contentType,
        ContentLength: request.byteSize,
        // Write-once: the store refuses a second PUT to the key (412), so a file cannot be
        // replaced after the server verified it, even while the URL is still valid.
        IfNoneMatch: '*',
      }),
      {
        expiresIn: ttlSeconds,
        signableHeaders: new Set(['content-type', 'content-length', 'if-none-match']),
      },
    );
    return {
      url,
      method: 'PUT',
      headers: [
        { name: 'content-type', value: request.contentType },
        { name: 'if-none-match', value: '*' },
      ],
    };
  }

  async *list(prefix: string): AsyncIterable<ListedObject> {
    let token: string | undefined;
    do {
      const page = await this.call('list', prefix, () =>
        this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            ...(token ? { ContinuationToken: token } : {}),
          }),
        ),
      );
      for (const object of page.Contents ?? []) {
        if (!object.Key) continue;
        yield {
          key: object.Key,
          byteSize: object.Size ?? 0,
          modifiedAt: object.LastModified ?? new Date(0),
        };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async ready(): Promise<boolean> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

function notFound(err: unknown): boolean {
  return (
    err instanceof S3ServiceException &&
    (err.$metadata.httpStatusCode === 404 || err.name === 'NoSuchKey' || err.name === 'NotFound')
  );
}

function describe(err: unknown): string {
  if (err instanceof S3ServiceException) {
    return `${err.name} (HTTP ${err.$metadata.httpStatusCode ?? '?'})`;
  }
  return err instanceof Error ? err.message : String(err);
}
