/**
 * A multer storage engine that streams the upload straight into the BlobStore while hashing it,
 * counting it and sniffing its first bytes. Nothing is buffered whole, in memory or on disk; an
 * upload that is too large, not audio, or cut off leaves no object behind.
 */
import { createHash } from 'node:crypto';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import type { Request } from 'express';
import { StemflowError } from '@stemflow/contracts';
import { SNIFF_BYTES, sniffMedia } from '@stemflow/audio';
import { keys, safeFileName, type BlobStore } from '@stemflow/storage';
import type { StorageEngine } from 'multer';

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

export class BlobUploadEngine implements StorageEngine {
  constructor(
    private readonly blobs: BlobStore,
    private readonly maxBytes: number,
  ) {}

  _handleFile(req: Request, file: Express.Multer.File, cb: (error?: unknown, info?: Partial<Express.Multer.File>) => void): void {
    const r = req as Request & { jobId: string; uploadGuard?: UploadGuard };
    // The file part has begun: the form's deadline is met; the rate guard stays on.
    r.uploadGuard?.fileStarted();
    storeInput(this.blobs, r.jobId, file.originalname, file.stream, { maxBytes: this.maxBytes, ...(r.uploadGuard ? { signal: r.uploadGuard.signal } : {}) }).then(
      (info) => cb(null, { ...info, path: info.key } as unknown as Partial<Express.Multer.File>),
      (err: unknown) => cb(err),
    );
  }

  _removeFile(_req: Request, file: Express.Multer.File & Partial<StoredUpload>, cb: (error: Error | null) => void): void {
    if (!file.key) return cb(null);
    this.blobs.delete(file.key).then(() => cb(null), (err: Error) => cb(err));
  }
}

export type UploadGuard = {
  /** Aborts when the client is gone, too slow, or past the form's deadline (reason: the error). */
  signal: AbortSignal;
  fileStarted(): void;
  /** Stops the timers (the request was answered). */
  done(): void;
};

/**
 * Holds an upload request to its limits from its first byte: the multipart preamble and fields
 * must reach the file part within `formTimeoutMs`; on average at least `minBytesPerSec` must
 * arrive over every `windowMs`; a client that goes away aborts it. Past a limit the client gets
 * 408 at once and the request is destroyed, which aborts the store write (temp file or multipart
 * upload removed, descriptor closed): a stalled client holds nothing.
 */
export function guardUpload(req: Request, o: { formTimeoutMs: number; minBytesPerSec: number; windowMs: number }): UploadGuard {
  const ctl = new AbortController();
  const socket = req.socket;
  let last = socket.bytesRead;
  const stop = (err: StemflowError) => {
    if (ctl.signal.aborted) return;
    clearTimeout(form);
    clearInterval(rate);
    ctl.abort(err);
    answerAndClose(req, err);
  };
  const form = setTimeout(() => stop(new StemflowError('REQUEST_TIMEOUT', `the upload's form did not reach its file within ${Math.round(o.formTimeoutMs / 1000)} s`, { status: 408 })), o.formTimeoutMs);
  const rate = setInterval(() => {
    if (req.complete) return clearInterval(rate); // all of it arrived; what follows is ours
    const got = socket.bytesRead - last;
    last = socket.bytesRead;
    const bps = (got * 1000) / o.windowMs;
    if (bps < o.minBytesPerSec) stop(new StemflowError('UPLOAD_TOO_SLOW', `the upload is too slow (${Math.round(bps)} bytes/s; this server needs at least ${o.minBytesPerSec})`, { status: 408 }));
  }, o.windowMs);
  const gone = () => {
    if (!req.complete) stop(new StemflowError('UPLOAD_ABORTED', 'the upload was interrupted', { status: 400 }));
  };
  socket.once('close', gone);
  req.once('close', gone);
  return {
    signal: ctl.signal,
    fileStarted: () => clearTimeout(form),
    done: () => {
      clearTimeout(form);
      clearInterval(rate);
      socket.off('close', gone);
    },
  };
}

/** Answers an error now (multer would first drain the rest of a slow body) and destroys the request. */
export function answerAndClose(req: Request, err: StemflowError) {
  const res = req.res;
  const destroy = () => {
    req.destroy();
    req.socket.destroy();
  };
  if (!res || res.headersSent || req.socket.destroyed) return destroy();
  res.writeHead(err.status, { 'content-type': 'application/json; charset=utf-8', connection: 'close' });
  res.end(JSON.stringify({ error: { code: err.code, message: err.message } }), destroy);
  // A client that does not read the answer must not hold the socket either.
  setTimeout(destroy, 1000).unref();
}
