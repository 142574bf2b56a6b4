/**
 * Storing an incoming file: streamed into the BlobStore while it is hashed, counted and typed by
 * its first bytes. Nothing is buffered whole, in memory or on disk; a file that is too large, of a
 * refused type, or cut off leaves no object behind. The gateway's uploads and the decoder's
 * imports store through it (each with the media sniffer it trusts).
 */
import { createHash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { StemflowError } from '@stemflow/contracts';
import type { BlobStore } from './port.js';

/** Types a file from its first `bytes` bytes (or all of it, when shorter): its MIME type, or a StemflowError. */
export type Sniffer = { bytes: number; type: (head: Buffer) => Promise<string> };
export type StoredFile = { key: string; size: number; sha256: string; contentType: string };
export type StoreChecked = {
  maxBytes: number;
  sniff: Sniffer;
  /** Aborts the transfer (its reason, when a StemflowError, is the error). */
  signal?: AbortSignal | undefined;
  /** Called as bytes arrive (the running total). */
  onBytes?: ((received: number) => void) | undefined;
};

class Inspect extends Transform {
  size = 0;
  readonly hash = createHash('sha256');
  contentType = '';
  private head: Buffer[] = [];
  private headLen = 0;
  private sniffed = false;

  constructor(private readonly o: StoreChecked) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
    this.size += chunk.length;
    if (this.size > this.o.maxBytes) {
      cb(new StemflowError('UPLOAD_TOO_LARGE', `the file is larger than the ${this.o.maxBytes} bytes this server accepts`, { status: 413 }));
      return;
    }
    this.o.onBytes?.(this.size);
    this.hash.update(chunk);
    if (this.sniffed) return cb(null, chunk);
    this.head.push(chunk);
    this.headLen += chunk.length;
    if (this.headLen < this.o.sniff.bytes) return cb();
    this.sniff().then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback) {
    if (this.size === 0) return cb(new StemflowError('EMPTY_FILE', 'the file is empty'));
    if (this.sniffed) return cb();
    this.sniff().then(() => cb(), cb);
  }

  private async sniff() {
    const head = Buffer.concat(this.head);
    this.contentType = await this.o.sniff.type(head);
    this.sniffed = true;
    this.head = [];
    this.push(head);
  }
}

/**
 * Streams `source` into the store at `key` while hashing, counting and typing it. Too large, a
 * refused type, aborted (signal), a source that fails, or a failed write: the promise rejects and
 * no object is left at `key`.
 */
export async function storeChecked(blobs: BlobStore, key: string, source: Readable, o: StoreChecked): Promise<StoredFile> {
  const inspect = new Inspect(o);
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
  } finally {
    o.signal?.removeEventListener('abort', abort);
  }
  return { key, size: inspect.size, sha256: inspect.hash.digest('hex'), contentType: inspect.contentType };
}
