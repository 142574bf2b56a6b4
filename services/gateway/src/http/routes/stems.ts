/** A job's files: each stem (finished, or growing while it runs), all in a zip, waveform peaks, mixdowns. */
import { basename, extname } from 'node:path';
import { ZipArchive } from 'archiver';
import { Router, type Request, type Response } from 'express';
import { FORMAT_EXT, MixQuery, OutputStemName, PeaksQuery, isFinished, outputStemNames, streamsWhileRunning, type Job, type StemObject } from '@stemflow/contracts';
import { openAll } from '@stemflow/runtime/resources';
import { contentDisposition } from '@stemflow/storage';
import { pipeLiveStem, waitForLiveStem, type LiveDeps } from '../../use-cases/live-stem.js';
import { getOwnedJob } from '../../use-cases/jobs.js';
import { parseMix, stemMix, stemPeaks } from '../../use-cases/renders.js';
import { jobIdOf, ownerFor, type Gateway } from '../context.js';
import { problem } from '../problems.js';
import { IMMUTABLE, answeredNotModified, etagOf, rangeOf, sendStoredFile } from '../send-file.js';
import { zodMessage } from '../submit-request.js';

const songName = (job: Job) => basename(job.input.filename, extname(job.input.filename));
/** A finished job's files never change after its completion (updated_at). */
const finishedAt = (job: Job) => new Date(job.updated_at);
/** A stem's strong ETag: its SHA-256 when the separator recorded it. */
const stemTag = (job: Job, s: StemObject) => (s.sha256 ? `"${s.sha256}"` : etagOf(job.id, s.key, s.bytes, job.updated_at));

const notCompleted = (job: Job) => problem('JOB_NOT_COMPLETED', `the job is ${job.status}; it has no stems yet`);
/** A job's object missing from the store: the job was deleted while this request was answered. */
const deletedMeanwhile = (job: Job) => (err: unknown) => {
  throw (err as { code?: string }).code === 'OBJECT_NOT_FOUND' ? problem('JOB_NOT_FOUND', `no job ${job.id} (it was deleted)`) : err;
};

/** The job's stem by name: a completed job without it is 404, a job not completed yet 409. */
function stemOf(job: Job, name: string): StemObject {
  const s = job.stems.find((x) => x.name === name);
  if (s) return s;
  if (job.status !== 'completed' && OutputStemName.safeParse(name).success) throw notCompleted(job);
  throw problem('STEM_NOT_FOUND', `the job has no stem "${name.slice(0, 40)}"${job.stems.length ? ` (it has ${job.stems.map((x) => x.name).join(', ')})` : ''}`);
}

export function stemsRouter(g: Gateway): Router {
  const r = Router();
  const { deps: d, options: o } = g;
  const presignSec = o.presignSec ?? 3600;
  const ownedJob = (req: Request, res: Response) => getOwnedJob({ jobs: g.reader }, jobIdOf(req), ownerFor(res));
  /** Whether a job is still in the read model (a delete removes it there, and its objects). */
  const stillThere = (id: string) => async () => (await d.jobs.get(id)) !== undefined;

  const sendStem = (req: Request, res: Response, job: Job, name: string) => {
    const s = stemOf(job, name);
    const ext = FORMAT_EXT[s.format];
    return sendStoredFile(req, res, d.blobs, presignSec, { key: s.key, bytes: s.bytes, name: `${songName(job)} - ${s.name}.${ext}`, ext, etag: stemTag(job, s), modified: finishedAt(job) });
  };

  r.get('/jobs/:id/stems/:stem', async (req, res) => {
    const job = await ownedJob(req, res);
    const stem = String(req.params.stem);
    if (!isFinished(job) && streamsWhileRunning(job.options) && outputStemNames(job.options).includes(stem as never)) return liveStem(req, res, job, stem);
    await sendStem(req, res, job, stem).catch(deletedMeanwhile(job));
  });

  /**
   * A stem of a running job whose stems stream (clip=clamp): what is final now, then the rest as it
   * is made, in one response that ends when the stem is complete. The headers wait for the first
   * bytes; a WAV's length is known from the start (Content-Length, and one Range for seeking).
   */
  const liveStem = async (req: Request, res: Response, job: Job, stem: string) => {
    // Quiet while the next piece is made (a model run, or a separator restarting): the connection's
    // idle timeout would cut a client that is only waiting. One that stops reading is cut by stallMs.
    req.socket.setTimeout(0);
    const deps = liveDeps(g, job.id, req);
    const m = await waitForLiveStem(deps, job.id, stem, () => req.destroyed);
    if (req.destroyed) return;
    // The job ended before the stem was started: what it is now decides (a stem, or why not).
    if (!m) return sendStem(req, res, await ownedJob(req, res), stem);
    const ext = FORMAT_EXT[m.format];
    let from = 0;
    let to: number | undefined;
    if (m.bytes !== null) {
      const range = rangeOf(req, res, m.bytes);
      [from, to] = range ? [range.start, range.end + 1] : [0, m.bytes];
      res.set('accept-ranges', 'bytes');
      if (range) res.status(206).set({ 'content-range': `bytes ${range.start}-${range.end}/${m.bytes}`, 'content-length': String(to - from) });
      else res.status(200).set('content-length', String(m.bytes));
    } else res.status(200);
    res.set({ 'content-type': m.contentType, 'content-disposition': contentDisposition(`${songName(job)} - ${stem}.${ext}`), 'cache-control': 'no-store', 'x-stemflow-live': 'true' });
    if (req.method === 'HEAD') return void res.end();
    res.flushHeaders();
    try {
      await pipeLiveStem(deps, job.id, stem, res, from, to);
      res.end();
    } catch (err) {
      // Cut, not ended: the client sees an incomplete file, not a complete wrong one.
      if ((err as { code?: string }).code !== 'CLIENT_GONE') d.log.warn({ jobId: job.id, stem, err: (err as Error).message }, 'live stem stream cut');
      res.destroy();
    }
  };

  r.get('/jobs/:id/stems.zip', async (req, res) => {
    const job = await ownedJob(req, res);
    if (job.status !== 'completed') throw notCompleted(job);
    res.set('cache-control', IMMUTABLE);
    if (answeredNotModified(req, res, etagOf('zip', ...job.stems.map((s) => stemTag(job, s))), finishedAt(job))) return;
    const name = songName(job);
    res.status(200).set({ 'content-type': 'application/zip', 'content-disposition': contentDisposition(`${name} - stems.zip`) });
    // Audio does not compress: store the entries, stream them one after the other.
    const zip = new ZipArchive({ store: true });
    zip.on('error', (err: Error) => {
      d.log.warn({ jobId: job.id, err: err.message }, 'zip stream failed');
      res.destroy(err);
    });
    // Every stem opened before the first byte: a job deleted meanwhile is a 404, not a cut zip
    // (and the stems opened by then are let go, not left holding their connections to the store).
    const files = await openAll(job.stems.map((s) => d.blobs.get(s.key)), (f) => f.destroy()).catch(deletedMeanwhile(job));
    // A client that leaves mid-zip: the zip stops and the stems not yet read are let go too.
    const left = new Promise<void>((resolve) => res.once('close', () => {
      if (!res.writableFinished) {
        zip.abort();
        for (const f of files) f.destroy();
      }
      resolve();
    }));
    zip.pipe(res);
    job.stems.forEach((s, i) => zip.append(files[i]!, { name: `${name} - ${s.name}.${FORMAT_EXT[s.format]}` }));
    await Promise.race([zip.finalize(), left]);
  });

  /**
   * A stem's waveform: min/max per block of `samples_per_pixel` frames, in the JSON format of
   * audiowaveform (peaks.js, waveform-data.js); computed once from the stem, then kept.
   */
  r.get('/jobs/:id/stems/:stem/peaks', async (req, res) => {
    const q = PeaksQuery.safeParse(req.query);
    if (!q.success) throw problem('INVALID_QUERY', zodMessage(q.error));
    const job = await ownedJob(req, res);
    const s = stemOf(job, String(req.params.stem));
    const level = q.data.samples_per_pixel;
    res.set('cache-control', IMMUTABLE);
    if (answeredNotModified(req, res, etagOf('peaks', level, stemTag(job, s)), finishedAt(job))) return;
    const body = await stemPeaks(d.blobs, job, s, level, stillThere(job.id)).catch(deletedMeanwhile(job));
    res.type('application/json; charset=utf-8').send(body);
  });

  /** The server's mixdown of some stems with gains (default: all at 1), in a format (default: the job's). */
  r.get('/jobs/:id/mix', async (req, res) => {
    const q = MixQuery.safeParse(req.query);
    if (!q.success) throw problem('INVALID_QUERY', zodMessage(q.error));
    const job = await ownedJob(req, res);
    if (job.status !== 'completed') throw notCompleted(job);
    const picks = parseMix(job, q.data.stems, q.data.gains);
    const format = q.data.format ?? job.stems[0]!.format;
    const practice = { tempo: q.data.tempo, semitones: q.data.semitones };
    const mixed = await stemMix(d.blobs, job, picks, format, stillThere(job.id), practice).catch(deletedMeanwhile(job));
    const ext = FORMAT_EXT[format];
    const changed = [practice.tempo !== undefined && practice.tempo !== 1 ? `${Math.round(practice.tempo * 100)} %` : '', practice.semitones ? `${practice.semitones > 0 ? '+' : ''}${practice.semitones} st` : ''].filter(Boolean).join(' ');
    const label = picks.map((p) => (p.gain === 1 ? p.name : `${p.name} ${Math.round(20 * Math.log10(Math.max(p.gain, 1e-6)))} dB`)).join(' + ') + (changed ? ` (${changed})` : '');
    const etag = etagOf('mix', mixed.key, mixed.bytes, ...job.stems.map((s) => stemTag(job, s)));
    await sendStoredFile(req, res, d.blobs, presignSec, { ...mixed, name: `${songName(job)} - ${label}.${ext}`, ext, etag, modified: finishedAt(job) }).catch(deletedMeanwhile(job));
  });
  return r;
}

/** How a live stem's response learns of its job: read model and events, woken by the job's events. */
function liveDeps(g: Gateway, jobId: string, req: Request): LiveDeps {
  const hub = g.options.hub;
  return {
    blobs: g.deps.blobs,
    stallMs: g.options.liveStallMs ?? 60_000,
    job: () => g.reader.get(jobId),
    nextEvent: (ms) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(done, ms);
        const stop = hub?.watch(jobId, { event: done, resync: done });
        req.once('close', done);
        function done() {
          clearTimeout(t);
          stop?.();
          req.off('close', done);
          resolve();
        }
      }),
  };
}
