/**
 * A multer storage engine that streams the upload straight into the BlobStore while hashing it,
 * counting it and sniffing its first bytes. Nothing is buffered whole, in memory or on disk; an
 * upload that is too large, not audio, or cut off leaves no object behind.
 */
import { createHash } from 'node:crypto';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import type { Request } from 'express';
import { StemflowError } from '@stemflow/contracts';
import { keys, safeFileName, type BlobStore } from '@stemflow/storage';
import { fileTypeFromBuffer } from 'file-type';
import type { StorageEngine } from 'multer';

export type StoredUpload = { key: string; size: number; sha256: string; contentType: string; filename: string };
const SNIFF_BYTES = 4100;

/** Audio, or video that may carry audio. Some containers are reported as application/*. */
const isMedia = (mime: string) => mime.startsWith('audio/') || mime.startsWith('video/') || mime === 'application/ogg' || mime === 'application/x-matroska';

class Inspect extends Transform {
  size = 0;
  readonly hash = createHash('sha256');
  contentType = '';
  private head: Buffer[] = [];
  private headLen = 0;
  private sniffed = false;
  private windowStart = Date.now();
  private windowBytes = 0;

  constructor(
    private readonly maxBytes: number,
    /** Slow-loris guard: at least minRate bytes/s on average over every window. */
    private readonly rate: { minBytesPerSec: number; windowMs: number } = { minBytesPerSec: 0, windowMs: 60_000 },
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
    const now = Date.now();
    if (now - this.windowStart >= this.rate.windowMs) {
      const bps = (this.windowBytes * 1000) / (now - this.windowStart);
      if (bps < this.rate.minBytesPerSec) {
        cb(new StemflowError('UPLOAD_TOO_SLOW', `the upload is too slow (${Math.round(bps)} bytes/s; this server needs at least ${this.rate.minBytesPerSec})`, { status: 408 }));
        return;
      }
      this.windowStart = now;
      this.windowBytes = 0;
    }
    this.windowBytes += chunk.length;
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
    const type = await fileTypeFromBuffer(head);
    if (!type || !isMedia(type.mime)) {
      throw new StemflowError(
        'UNSUPPORTED_MEDIA_TYPE',
        type ? `the file is ${type.mime} (${type.ext}), not audio or video` : 'the file is not audio or video (its content matches no known audio or video format)',
        { status: 415 },
      );
    }
    this.contentType = type.mime;
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
  o: { maxBytes: number; signal?: AbortSignal; minBytesPerSec?: number; rateWindowMs?: number },
): Promise<StoredUpload> {
  const filename = safeFileName(originalName);
  const key = keys.input(jobId, filename);
  const inspect = new Inspect(o.maxBytes, { minBytesPerSec: o.minBytesPerSec ?? 0, windowMs: o.rateWindowMs ?? 60_000 });
  source.on('error', (err) => inspect.destroy(err));
  o.signal?.addEventListener('abort', () => inspect.destroy(new StemflowError('UPLOAD_ABORTED', 'the upload was interrupted', { status: 400 })), { once: true });
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

function answerAndClose(req: Request, err: StemflowError) {
  const res = req.res;
  if (!res || res.headersSent) return void req.socket.destroy();
  res.writeHead(err.status, { 'content-type': 'application/json; charset=utf-8', connection: 'close' });
  res.end(JSON.stringify({ error: { code: err.code, message: err.message } }), () => req.socket.destroy());
}

export class BlobUploadEngine implements StorageEngine {
  constructor(
    private readonly blobs: BlobStore,
    private readonly maxBytes: number,
    private readonly rate: { minBytesPerSec: number; windowMs: number } = { minBytesPerSec: 0, windowMs: 60_000 },
  ) {}

  _handleFile(req: Request, file: Express.Multer.File, cb: (error?: unknown, info?: Partial<Express.Multer.File>) => void): void {
    const jobId = (req as Request & { jobId: string }).jobId;
    // A client that goes away mid-upload must not leave a half object.
    const aborted = new AbortController();
    req.once('close', () => {
      if (!req.complete) aborted.abort();
    });
    storeInput(this.blobs, jobId, file.originalname, file.stream, { maxBytes: this.maxBytes, signal: aborted.signal, minBytesPerSec: this.rate.minBytesPerSec, rateWindowMs: this.rate.windowMs }).then(
      (info) => cb(null, { ...info, path: info.key } as unknown as Partial<Express.Multer.File>),
      (err: unknown) => {
        // multer drains the rest of the body before answering an error, which is what a slow
        // client wants: answer it now and close the connection instead.
        if (err instanceof StemflowError && err.code === 'UPLOAD_TOO_SLOW') answerAndClose(req, err);
        cb(err);
      },
    );
  }

  _removeFile(_req: Request, file: Express.Multer.File & Partial<StoredUpload>, cb: (error: Error | null) => void): void {
    if (!file.key) return cb(null);
    this.blobs.delete(file.key).then(() => cb(null), (err: Error) => cb(err));
  }
}
