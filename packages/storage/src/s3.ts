import { Readable } from 'node:stream';
import { StemflowError, unavailable } from '@stemflow/contracts';
import { Client } from 'minio';
import { notFound } from './fs.js';
import type { BlobInfo, BlobStore, ByteRange, PutOptions } from './port.js';

export type S3Options = { endpoint: string; accessKey: string; secretKey: string; bucket: string; region?: string };

/**
 * Any S3 server through the `minio` client (MinIO, versitygw, AWS…). Streams of unknown length are
 * uploaded in multipart parts; an upload that fails is aborted, so no partial object appears.
 */
export class S3BlobStore implements BlobStore {
  private readonly client: Client;
  readonly bucket: string;
  private bucketReady: Promise<void> | undefined;

  constructor(private readonly opts: S3Options) {
    const url = new URL(opts.endpoint);
    this.client = new Client({
      endPoint: url.hostname,
      port: url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80,
      useSSL: url.protocol === 'https:',
      accessKey: opts.accessKey,
      secretKey: opts.secretKey,
      region: opts.region ?? 'us-east-1',
      pathStyle: true,
      // 16 MiB parts: bounded memory per upload, few parts for big files.
      partSize: 16 * 1024 * 1024,
    });
    this.bucket = opts.bucket;
  }

  /** Creates the bucket if needed; retried on the next call after a failure. */
  private ensureBucket(): Promise<void> {
    this.bucketReady ??= (async () => {
      if (!(await this.client.bucketExists(this.bucket))) {
        await this.client.makeBucket(this.bucket, this.opts.region ?? 'us-east-1').catch((err: { code?: string }) => {
          if (err.code !== 'BucketAlreadyOwnedByYou' && err.code !== 'BucketAlreadyExists') throw err;
        });
      }
    })().catch((err: unknown) => {
      this.bucketReady = undefined;
      throw wrap(err, 'object store');
    });
    return this.bucketReady;
  }

  async put(key: string, source: Readable | Buffer, opts: PutOptions = {}): Promise<{ bytes: number }> {
    await this.ensureBucket();
    // A stream that ends before its first byte is an empty object (an upload of no parts is not one).
    const body = Buffer.isBuffer(source) ? source : await emptyOr(source);
    let bytes = 0;
    const counted = Buffer.isBuffer(body)
      ? body
      : Readable.from(
          (async function* () {
            for await (const c of body) {
              bytes += (c as Buffer).length;
              yield c as Buffer;
            }
          })(),
        );
    // The minio client does not notice a failing source stream (it would wait forever): race it.
    let sourceError: unknown;
    let settled: Promise<void> | undefined;
    const sourceFailed = Buffer.isBuffer(counted)
      ? undefined
      : new Promise<never>((_, reject) =>
          counted.once('error', (err) => {
            sourceError = err;
            reject(err);
          }),
        );
    try {
      const upload = this.client.putObject(this.bucket, key, counted, Buffer.isBuffer(body) ? body.length : opts.size, {
        'Content-Type': opts.contentType ?? 'application/octet-stream',
      });
      settled = upload.then(
        () => {},
        () => {},
      );
      await (sourceFailed ? Promise.race([upload, sourceFailed]) : upload);
    } catch (err) {
      // Drop any multipart parts already sent: a failed put leaves nothing behind. The client may
      // still be starting a part when the source fails: once its upload settles, drop again.
      await this.client.removeIncompleteUpload(this.bucket, key).catch(() => {});
      void settled?.then(() => this.client.removeIncompleteUpload(this.bucket, key)).catch(() => {});
      // The source stream's own error (client aborted, limit hit) is the cause worth reporting.
      throw err instanceof StemflowError || err === sourceError ? err : wrap(err, 'object store');
    }
    return { bytes: Buffer.isBuffer(body) ? body.length : bytes };
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    await this.ensureBucket();
    try {
      if (range) {
        const length = range.end === undefined ? 0 : range.end - range.start + 1;
        return await this.client.getPartialObject(this.bucket, key, range.start, length || undefined);
      }
      return await this.client.getObject(this.bucket, key);
    } catch (err) {
      if (isMissing(err)) throw notFound(key);
      throw wrap(err, 'object store');
    }
  }

  async head(key: string): Promise<BlobInfo | undefined> {
    await this.ensureBucket();
    try {
      const s = await this.client.statObject(this.bucket, key);
      const ct = s.metaData?.['content-type'] as string | undefined;
      return { key, size: s.size, ...(ct ? { contentType: ct } : {}) };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw wrap(err, 'object store');
    }
  }

  async list(prefix: string): Promise<BlobInfo[]> {
    await this.ensureBucket();
    const out: BlobInfo[] = [];
    try {
      for await (const o of this.client.listObjectsV2(this.bucket, prefix, true)) {
        const obj = o as { name?: string; size?: number; lastModified?: Date };
        if (obj.name) out.push({ key: obj.name, size: obj.size ?? 0, ...(obj.lastModified ? { modified: obj.lastModified } : {}) });
      }
    } catch (err) {
      throw wrap(err, 'object store');
    }
    return out.sort((a, b) => a.key.localeCompare(b.key));
  }

  async delete(key: string): Promise<void> {
    await this.ensureBucket();
    await this.client.removeObject(this.bucket, key).catch((err: unknown) => {
      if (!isMissing(err)) throw wrap(err, 'object store');
    });
  }

  async abortStaleWrites(prefix: string, startedBefore: Date, abandoned: (key: string) => boolean | Promise<boolean> = () => true): Promise<number> {
    await this.ensureBucket();
    let aborted = 0;
    let keyMarker = '';
    let uploadIdMarker = '';
    try {
      for (;;) {
        const page = await this.client.listIncompleteUploadsQuery(this.bucket, prefix, keyMarker, uploadIdMarker, '');
        for (const u of page.uploads as { key: string; uploadId: string; initiated?: Date }[]) {
          if (u.initiated && u.initiated.getTime() < startedBefore.getTime() && (await abandoned(u.key))) {
            await this.client.abortMultipartUpload(this.bucket, u.key, u.uploadId);
            aborted++;
          }
        }
        if (!page.isTruncated) break;
        keyMarker = page.nextKeyMarker;
        uploadIdMarker = page.nextUploadIdMarker;
      }
    } catch (err) {
      throw wrap(err, 'object store');
    }
    return aborted;
  }

  async deletePrefix(prefix: string): Promise<number> {
    const found = await this.list(prefix);
    if (found.length) await this.client.removeObjects(this.bucket, found.map((b) => b.key)).catch((err: unknown) => {
      throw wrap(err, 'object store');
    });
    return found.length;
  }

  async presignGet(key: string, expirySec: number, downloadName?: string): Promise<string> {
    await this.ensureBucket();
    const headers: Record<string, string> = downloadName ? { 'response-content-disposition': contentDisposition(downloadName) } : {};
    return this.client.presignedGetObject(this.bucket, key, expirySec, headers);
  }

  async sourceUrl(key: string, expirySec = 6 * 3600): Promise<string> {
    if (!(await this.head(key))) throw notFound(key);
    return this.client.presignedGetObject(this.bucket, key, expirySec);
  }

  async health() {
    try {
      await this.client.bucketExists(this.bucket);
      return { ok: true, detail: `S3 ${this.opts.endpoint} bucket ${this.bucket}` };
    } catch (err) {
      return { ok: false, detail: `S3 ${this.opts.endpoint}: ${(err as Error).message}` };
    }
  }
}

const isMissing = (err: unknown) => ['NoSuchKey', 'NotFound', 'NoSuchObject'].includes((err as { code?: string }).code ?? '');

function wrap(err: unknown, what: string): StemflowError {
  if (err instanceof StemflowError) return err;
  const code = (err as { code?: string }).code ?? '';
  // Network trouble is transient; S3 errors about the request are not.
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_SOCKET'].includes(code) || code === '' || /5\d\d/.test(String((err as { statusCode?: number }).statusCode ?? ''))) {
    return unavailable(what, err);
  }
  return new StemflowError('STORE_ERROR', `${what}: ${(err as Error).message}`, { cause: err, status: 500 });
}

/** RFC 6266 with an ASCII fallback and the UTF-8 name. */
export const contentDisposition = (name: string) =>
  `attachment; filename="${name.replace(/[^\x20-\x7e]|["\\]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(name)}`;

/** The stream, or an empty buffer when it ends without a byte (its first chunk is read to know). */
async function emptyOr(stream: Readable): Promise<Readable | Buffer> {
  const it = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await it.next();
  if (first.done) return Buffer.alloc(0);
  return Readable.from(
    (async function* () {
      yield first.value;
      for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
    })(),
  );
}
