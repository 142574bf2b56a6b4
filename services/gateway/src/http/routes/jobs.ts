/** Jobs: submit (a file or a URL), list, read, cancel, delete. */
import express, { Router, type Request, type Response } from 'express';
import multer from 'multer';
import { v7 as uuidv7 } from 'uuid';
import { ListJobsQuery } from '@stemflow/contracts';
import { decodeCursor } from '@stemflow/jobs';
import { uploadedBytes } from '@stemflow/telemetry';
import { cancelJob, deleteJob, getOwnedJob, toView } from '../../use-cases/jobs.js';
import { idempotencyKey, type Caller, type Submission, type SubmitOutcome } from '../../use-cases/submit-job.js';
import type { StoredUpload } from '../../use-cases/store-input.js';
import { jobIdOf, ownerFor, settingsFor, type Gateway } from '../context.js';
import { problem } from '../problems.js';
import { fromForm, fromJson, zodMessage } from '../submit-request.js';
import { BlobUploadEngine, guardUpload, type UploadGuard } from '../upload-engine.js';

type UploadReq = Request & { jobId: string; file?: Express.Multer.File & StoredUpload; uploadGuard?: UploadGuard };

/** JSON bodies (an import by URL) are small: past this, 413 BODY_TOO_LARGE. */
const JSON_LIMIT = '16kb';

export function jobsRouter(g: Gateway): Router {
  const r = Router();
  const { deps: d, options: o, submitter } = g;
  const upload = multer({
    storage: new BlobUploadEngine(d.blobs, o.maxUploadBytes),
    // Browsers send UTF-8 file names without saying so; busboy's default would mangle them.
    defParamCharset: 'utf8',
    // The engine enforces the size (and deletes); busboy's own limit sits just above it.
    limits: { files: 1, fileSize: o.maxUploadBytes + 1024 * 1024, fields: 20, fieldSize: 2048, parts: 30 },
  }).single('file');
  const jsonBody = express.json({ limit: JSON_LIMIT, strict: true });

  const created = (res: Response, out: SubmitOutcome) => {
    res.status(201).location(`/api/jobs/${out.job.id}`);
    if (out.replayed) res.set('idempotent-replayed', 'true');
    res.json(out.job);
  };

  r.post('/jobs', async (req, res, next) => {
    const ureq = req as UploadReq;
    ureq.jobId = uuidv7();
    const caller: Caller = { owner: ownerFor(res) ?? null, settings: settingsFor(res) };
    const key = idempotencyKey(req.get('idempotency-key'));
    const submit = (s: Submission, file: StoredUpload | undefined) => submitter.accept({ jobId: ureq.jobId, caller, idempotencyKey: key }, s, file);
    // A JSON body names its input by URL; a multipart one carries the file (or input_url).
    if (req.is('application/json')) {
      await submitter.precheck(caller, key);
      await new Promise<void>((resolve, reject) => jsonBody(req, res, (err?: unknown) => (err ? reject(err) : resolve())));
      return created(res, await submit(fromJson(req.body), undefined));
    }
    if (!req.is('multipart/form-data')) throw problem('NOT_MULTIPART', 'send multipart/form-data with the audio in the field "file" (or application/json with "input_url")');
    await submitter.precheck(caller, key);
    ureq.uploadGuard = guardUpload(req, { formTimeoutMs: o.formTimeoutMs ?? 30_000, minBytesPerSec: o.minUploadBytesPerSec ?? 0, windowMs: o.idleTimeoutMs ?? 60_000 });
    res.once('close', () => ureq.uploadGuard?.done());
    upload(req, res, async (err: unknown) => {
      const file = ureq.file;
      try {
        // Already answered (408, the client gone): what multer reports now is only its echo.
        if (ureq.uploadGuard?.signal.aborted) {
          if (file?.key) await d.blobs.delete(file.key).catch(() => {});
          return;
        }
        if (err) throw err;
        let s: Submission;
        try {
          s = fromForm(req.body);
        } catch (e) {
          if (file?.key) await d.blobs.delete(file.key).catch(() => {}); // a refused upload keeps nothing
          throw e;
        }
        created(res, await submit(s, file));
        if (file) uploadedBytes.inc(file.size);
      } catch (e) {
        next(e);
      }
    });
  });

  r.get('/jobs', async (req, res) => {
    const q = ListJobsQuery.safeParse(req.query);
    if (!q.success) throw problem('INVALID_QUERY', zodMessage(q.error));
    if (q.data.cursor !== undefined && !decodeCursor(q.data.cursor)) throw problem('INVALID_CURSOR', 'cursor is not a next_cursor this server gave out');
    const owner = ownerFor(res);
    const page = await d.jobs.list({ ...q.data, ...(owner !== undefined ? { owner } : {}) });
    res.json({ items: page.items.map((j) => toView(j)), next_cursor: page.nextCursor });
  });

  r.get('/jobs/:id', async (req, res) => {
    res.json(toView(await getOwnedJob({ jobs: g.reader }, jobIdOf(req), ownerFor(res))));
  });

  r.post('/jobs/:id/cancel', async (req, res) => {
    const job = await getOwnedJob({ jobs: g.reader }, jobIdOf(req), ownerFor(res));
    await cancelJob(d, job);
    res.status(202).json(toView(job));
  });

  r.delete('/jobs/:id', async (req, res) => {
    const id = jobIdOf(req);
    const job = await getOwnedJob(d, id, ownerFor(res));
    await deleteJob(d, job);
    o.hub?.forget(id); // what this gateway heard of it is dropped; its open streams end
    await submitter.jobDeleted(id).catch((err: Error) => d.log.warn({ jobId: id, err: err.message }, 'the idempotency keys of a deleted job stay until they expire'));
    res.status(204).end();
  });
  return r;
}
