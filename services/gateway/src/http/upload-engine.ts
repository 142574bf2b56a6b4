/**
 * A multer storage engine that streams the upload straight into the BlobStore (storeInput), and
 * the guard that holds an upload request to its deadlines.
 */
import type { Request } from 'express';
import type { StorageEngine } from 'multer';
import { StemflowError } from '@stemflow/contracts';
import type { BlobStore } from '@stemflow/storage';
import { storeInput, type StoredUpload } from '../use-cases/store-input.js';
import { sendProblem } from './problems.js';

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
  res.setHeader('connection', 'close');
  sendProblem(req, res, err, destroy);
  // A client that does not read the answer must not hold the socket either.
  setTimeout(destroy, 1000).unref();
}
