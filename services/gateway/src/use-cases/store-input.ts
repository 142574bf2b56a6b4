/**
 * Storing a job's input: streamed into the BlobStore while it is hashed, counted and sniffed.
 * Nothing is buffered whole, in memory or on disk; an input that is too large, not audio, or cut
 * off leaves no object behind. The HTTP upload, an import by URL and the CLI all store through it.
 */
import { createHash } from 'node:crypto';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { StemflowError } from '@stemflow/contracts';
import { SNIFF_BYTES, sniffMedia } from '@stemflow/audio';
import { keys, safeFileName, type BlobStore } from '@stemflow/storage';

export type StoredUpload = { key: string; size: number; sha256: string; contentType: string; filename: string };

class Inspect extends Transform {
  size = 0;
  readonly hash = createHash('sha256');
  contentType = '';
  private head: Buffer[] = [];
  private headLen = 0;
  private sniffed = false;

  constructor(private readonly maxBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      cb(new StemflowError('UPLOAD_TOO_LARGE', `the file is larger than the ${this.maxBytes} bytes this server accepts`, { status: 413 }));
      return;
    }
    this.hash.update(chunk);
    if (this.sniffed) return cb(null, chunk);
    this.head.push(chunk);
    this.headLen += chunk.length;
    if (this.headLen < SNIFF_BYTES) return cb();
    this.sniff().then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback) {
    if (this.size === 0) return cb(new StemflowError('EMPTY_FILE', 'the uploaded file is empty'));
    if (this.sniffed) return cb();
    this.sniff().then(() => cb(), cb);
  }

  private async sniff() {
    const head = Buffer.concat(this.head);
    // The same allowlist the decoder enforces: refused here, the client learns it at once.
    this.contentType = (await sniffMedia(head)).mime;
    this.sniffed = true;
    this.head = [];
    this.push(head);
  }
}

/**
 * Streams one input into the store under `jobs/{id}/input/` while hashing, counting and sniffing
 * it. Too large, not audio, aborted (signal) or a failed write: the promise rejects and no object
 * is left. Used by the HTTP upload and by the CLI.
 */
export async function storeInput(
  blobs: BlobStore,
  jobId: string,
  originalName: string | undefined,
  source: Readable,
  o: { maxBytes: number; signal?: AbortSignal },
): Promise<StoredUpload> {
  const filename = safeFileName(originalName);
  const key = keys.input(jobId);
  const inspect = new Inspect(o.maxBytes);
  source.on('error', (err) => inspect.destroy(err));
  const abort = () => inspect.destroy(o.signal?.reason instanceof StemflowError ? o.signal.reason : new StemflowError('UPLOAD_ABORTED', 'the upload was interrupted', { status: 400 }));
  if (o.signal?.aborted) abort();
  o.signal?.addEventListener('abort', abort, { once: true });
  source.pipe(inspect);
  // The inspection may fail before the store starts reading (tiny files): catch it here, once.
  const rejected = new Promise<never>((_, reject) => inspect.once('error', reject));
  try {
    await Promise.race([blobs.put(key, inspect, {}), rejected]);
  } catch (err) {
    source.unpipe(inspect);
    source.resume(); // drain what is left so the producer (busboy) can finish
    inspect.destroy();
    await blobs.delete(key).catch(() => {}); // in case the store finished writing anyway
    throw err;
  }
  return { key, size: inspect.size, sha256: inspect.hash.digest('hex'), contentType: inspect.contentType, filename };
}
