import { createHash, timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ZipArchive } from 'archiver';
import express, { type NextFunction, type Request, type Response } from 'express';
import multer from 'multer';
import { parse as parseRange } from 'range-parser';
import { v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import { AudioFormat, FORMAT_EXT, JOB_STATUSES, StemflowError, outputStemNames, streamsWhileRunning, asyncApiDocument, describeError, invalid, openApiDocument, type AnyEvent, type Job } from '@stemflow/contracts';
import { contentDisposition } from '@stemflow/storage';
import { adapterChecks, runChecks, type Check } from '@stemflow/runtime';
import { httpRequestDuration, limitRefusals, readModelReads, renderMetrics, sseStreams, uploadedBytes } from '@stemflow/telemetry';
import type { KeySettings } from '@stemflow/config';
import type { Ledger } from '@stemflow/jobs';
import { addressPolicy, webhookSecret, type AddressPolicy } from '@stemflow/net';
import { fromForm, fromJson, Submitter, zodMessage, type Submission } from './submit.js';
import { rateLimitFields, secondsToUtcMidnight } from '../use-cases/limits.js';
import { parseMix, stemMix, stemPeaks } from '../use-cases/renders.js';
import { pipeLiveStem, waitForLiveStem, type LiveDeps } from '../use-cases/live-stem.js';
import { PEAK_LEVELS, type PeakLevel } from '@stemflow/audio';
import { BlobUploadEngine, guardUpload, type StoredUpload, type UploadGuard } from './upload-engine.js';
import type { EventsHub } from './events-hub.js';
import { project } from '@stemflow/jobs';
import { cancelJob, deleteJob, getOwnedJob, isFinished, toView, type Deps } from '../use-cases/jobs.js';

export type GatewayOptions = {
  maxUploadBytes: number;
  /** Slow-loris guard for uploads, from the first byte (0: none). */
  minUploadBytesPerSec?: number;
  /** The window that rate is averaged over; also the server's idle timeout. */
  idleTimeoutMs?: number;
  /** An upload's multipart form must reach its file within this. */
  formTimeoutMs?: number;
  /** A job may cost at most this many model runs (options alone are checked here). */
  maxModelRuns?: number;
  apiKeys?: string[] | undefined;
  /** How often SSE looks at the read model. */
  ssePollMs?: number;
  /** A quiet SSE stream gets a `: keep-alive` comment this often, so proxies keep it open. */
  sseKeepAliveMs?: number;
  /** Presigned download links live this long. */
  presignSec?: number;
  /** A live stem's client that takes nothing this long is cut (default 60 s). */
  liveStallMs?: number;
  /** What /api/health reports (default: the adapters). */
  checks?: Check[];
  /** Job events pushed from the bus; without it (or while it is down) SSE polls the read model. */
  hub?: EventsHub;
  /** A stream that heard nothing from the bus this long reads the read model once (an event it missed). */
  sseQuietPollMs?: number;
  /** Webhook URL and limits per API key ("*": every key, or every client without keys). */
  keySettings?: Record<string, KeySettings> | undefined;
  /** Idempotency keys, job slots and request counters shared with the other gateways. */
  ledger?: Ledger | undefined;
  /** Which addresses imports and webhooks may reach (default: public ones only). */
  policy?: AddressPolicy;
  /** Signs webhooks (per key, derived); without it a callback_url is refused. */
  webhookSecret?: string | undefined;
  /** A file imported by URL must arrive within this. */
  importTimeoutMs?: number;
  /** The clock the request-rate windows are counted on (tests fix it). */
  now?: () => number;
};

type Req = Request & { jobId: string; file?: Express.Multer.File & StoredUpload; uploadGuard?: UploadGuard };
/** The caller's owner id (undefined when the server has no API keys). */
const ownerFor = (res: Response): string | undefined => res.locals.owner as string | undefined;
/** The caller's webhook and limits (its key's settings over "*"). */
const settingsFor = (res: Response): KeySettings => (res.locals.settings as KeySettings | undefined) ?? {};

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

const ext = FORMAT_EXT;
const mime = { wav: 'audio/wav', flac: 'audio/flac', mp3: 'audio/mpeg' } as const;

const JobIdParam = z.uuid();
const jobId = (req: Request) => {
  const id = JobIdParam.safeParse(req.params.id);
  if (!id.success) throw invalid('INVALID_JOB_ID', `"${String(req.params.id).slice(0, 80)}" is not a job id`);
  return id.data;
};

export const ownerOf = (key: string) => `key-${createHash('sha256').update(key).digest('hex').slice(0, 24)}`;

export function createApp(d: Deps, o: GatewayOptions) {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);

  // Request durations by route template (never by raw path: ids would explode the label set).
  app.use((req, res, next) => {
    const end = httpRequestDuration.startTimer();
    res.once('finish', () => {
      const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : res.statusCode === 404 ? 'unmatched' : 'static';
      end({ method: req.method, route, status: String(res.statusCode) });
    });
    next();
  });

  // Public: liveness, health, API description, docs, the web page.
  app.get('/livez', (_req, res) => void res.json({ status: 'ok' }));
  app.get('/metrics', async (_req, res) => {
    const m = await renderMetrics();
    res.type(m.contentType).send(m.body);
  });
  const eventsCheck: Check = {
    name: 'events',
    check: async () =>
      !o.hub ? { ok: true, detail: 'no bus subscription: SSE polls the read model' } : o.hub.live ? { ok: true, detail: `pushed from the bus to ${o.hub.streams} open streams` } : { ok: false, detail: 'the bus subscription is down: SSE polls the read model' },
  };
  app.get('/api/health', async (_req, res) => {
    const h = await runChecks([...(o.checks ?? adapterChecks(d)), eventsCheck]);
    res.status(h.status === 'ok' ? 200 : 503).json(h);
  });
  const doc = openApiDocument();
  app.get('/api/openapi.json', (_req, res) => void res.json(doc));
  const events = asyncApiDocument();
  app.get('/api/asyncapi.json', (_req, res) => void res.json(events));
  app.get('/docs', (_req, res) => void res.type('html').send(swaggerPage));
  app.use('/docs/assets', express.static(dirname(require.resolve('swagger-ui-dist/package.json')), { index: false }));
  // The waveform library the page draws with (wavesurfer.js, BSD-3-Clause), from its package.
  const vendor = dirname(require.resolve('wavesurfer.js'));
  app.get('/vendor/wavesurfer.min.js', (_req, res) => void res.type('js').sendFile('wavesurfer.min.js', { root: vendor, maxAge: '1d' }));
  app.use(express.static(join(here, '..', '..', 'public'), { index: 'index.html' }));

  const sha256 = (s: string) => createHash('sha256').update(s, 'latin1').digest();
  const keyDigests = (o.apiKeys ?? []).map((k) => sha256(k));
  // Authentication (when API_KEYS is set): every other /api call carries a bearer key.
  app.use('/api', (req, res, next) => {
    if (!o.apiKeys?.length) {
      res.locals.settings = { ...o.keySettings?.['*'] };
      return next();
    }
    const m = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '');
    if (!m) throw new StemflowError('UNAUTHENTICATED', 'send an API key as "Authorization: Bearer <key>"', { status: 401 });
    // Bytes, not characters, compared in constant time: digests of equal length whatever was sent.
    const given = sha256(m[1]!);
    const ok = keyDigests.reduce((hit, k) => timingSafeEqual(k, given) || hit, false);
    if (!ok) throw new StemflowError('UNAUTHENTICATED', 'unknown API key', { status: 401 });
      res.locals.owner = ownerOf(m[1]!);
    res.locals.settings = { ...o.keySettings?.['*'], ...o.keySettings?.[m[1]!] };
    next();
  });

  // Requests per second per key, counted in the ledger (so across every gateway). The database
  // down must not take the API with it: the limit is then not enforced (logged), reads go on.
  app.use('/api', async (_req, res, next) => {
    const s = settingsFor(res);
    if (!s.requests_per_sec || !submitter.limits) return next();
    let count: number;
    try {
      count = (await submitter.limits.hit(ownerFor(res) ?? null, s.requests_per_sec, o.now?.() ?? Date.now())).count;
    } catch (err) {
      d.log.warn({ err: describeError(err) }, 'rate limit not enforced: the ledger is unavailable');
      return next();
    }
    const { policy, state } = rateLimitFields(s, { requests: count });
    res.set({ 'ratelimit-policy': policy.join(', '), ratelimit: state.join(', ') });
    if (count > s.requests_per_sec) {
      res.set({ 'retry-after': '1', connection: 'close' });
      limitRefusals.inc({ limit: 'rate' });
      throw new StemflowError('RATE_LIMITED', `this API key may make ${s.requests_per_sec} requests per second; wait a second`, { status: 429 });
    }
    next();
  });

  const upload = multer({
    storage: new BlobUploadEngine(d.blobs, o.maxUploadBytes),
    // Browsers send UTF-8 file names without saying so; busboy's default would mangle them.
    defParamCharset: 'utf8',
    // The engine enforces the size (and deletes); busboy's own limit sits just above it.
    limits: { files: 1, fileSize: o.maxUploadBytes + 1024 * 1024, fields: 20, fieldSize: 1024, parts: 30 },
  }).single('file');

  const jsonBody = express.json({ limit: '16kb', strict: true });
  app.post('/api/jobs', async (req, res, next) => {
    const r = req as Req;
    r.jobId = uuidv7();
    const caller = { owner: ownerFor(res) ?? null, settings: settingsFor(res) };
    // A JSON body names its input by URL; a multipart one carries the file (or input_url).
    if (req.is('application/json')) {
      await submitter.precheck(req, res, caller);
      await new Promise<void>((resolve, reject) => jsonBody(req, res, (err?: unknown) => (err ? reject(err) : resolve())));
      return submitter.accept(req, res, r.jobId, caller, fromJson(req.body), undefined);
    }
    if (!req.is('multipart/form-data')) throw invalid('NOT_MULTIPART', 'send multipart/form-data with the audio in the field "file" (or application/json with "input_url")');
    await submitter.precheck(req, res, caller);
    r.uploadGuard = guardUpload(req, { formTimeoutMs: o.formTimeoutMs ?? 30_000, minBytesPerSec: o.minUploadBytesPerSec ?? 0, windowMs: o.idleTimeoutMs ?? 60_000 });
    res.once('close', () => r.uploadGuard?.done());
    upload(req, res, async (err: unknown) => {
      try {
        // Already answered (408, the client gone): what multer reports now is only its echo.
        if (r.uploadGuard?.signal.aborted) {
          if (r.file?.key) await d.blobs.delete(r.file.key).catch(() => {});
          return;
        }
        if (err) throw err;
        let s: Submission;
        try {
          s = fromForm(req.body);
        } catch (e) {
          if (r.file?.key) await d.blobs.delete(r.file.key).catch(() => {}); // a refused upload keeps nothing
          throw e;
        }
        await submitter.accept(req, res, r.jobId, caller, s, r.file);
        if (r.file) uploadedBytes.inc(r.file.size);
      } catch (e) {
        next(e);
      }
    });
  });

  /** The calling key's limits and what it used today. */
  app.get('/api/usage', async (_req, res) => {
    const s = settingsFor(res);
    const owner = ownerFor(res) ?? null;
    const limits = submitter.limits;
    const minutes = limits ? await limits.minutes(owner, s.audio_minutes_per_day ?? Number.POSITIVE_INFINITY) : undefined;
    const active = limits && s.max_concurrent_jobs ? await limits.activeJobs(owner, s.max_concurrent_jobs) : null;
    const usedMin = (minutes?.usedSec ?? 0) / 60;
    const { policy, state } = rateLimitFields(s, { activeJobs: active ?? undefined, leftSec: minutes?.leftSec });
    if (policy.length) res.set({ 'ratelimit-policy': policy.join(', '), ratelimit: state.join(', ') });
    res.json({
      day: new Date().toISOString().slice(0, 10),
      limits: { max_concurrent_jobs: s.max_concurrent_jobs ?? null, audio_minutes_per_day: s.audio_minutes_per_day ?? null, requests_per_sec: s.requests_per_sec ?? null },
      usage: {
        active_jobs: active,
        jobs_today: minutes?.jobs ?? 0,
        audio_minutes_today: Math.round(usedMin * 100) / 100,
        audio_minutes_left: s.audio_minutes_per_day ? Math.max(0, Math.round((s.audio_minutes_per_day - usedMin) * 100) / 100) : null,
      },
      resets_in_sec: secondsToUtcMidnight(),
    });
  });

  /** The secret this key's webhooks are signed with (Standard Webhooks, whsec_…). */
  app.get('/api/webhooks/secret', (_req, res) => {
    if (!o.webhookSecret) throw new StemflowError('WEBHOOKS_DISABLED', 'this server sends no webhooks (it has no WEBHOOK_SECRET)', { status: 404 });
    res.set('cache-control', 'no-store').json({ secret: webhookSecret(o.webhookSecret, ownerFor(res) ?? null), scheme: 'standard-webhooks-v1' });
  });

  app.get('/api/jobs', async (req, res) => {
    const q = z
      .object({
        limit: z.coerce.number().int().min(1).max(100).default(20),
        cursor: z.string().max(200).optional(),
        status: z.enum(JOB_STATUSES).optional(),
      })
      .strict()
      .safeParse(req.query);
    if (!q.success) throw invalid('INVALID_QUERY', zodMessage(q.error));
    const owner = ownerFor(res);
    const page = await d.jobs.list({ ...q.data, ...(owner !== undefined ? { owner } : {}) });
    res.json({ items: page.items.map((j) => toView(j)), next_cursor: page.nextCursor });
  });

  /**
   * The job, from the read model with what this gateway heard since applied over it; while the
   * database is down, from what this gateway heard alone (a job it saw created).
   */
  const jobsView = {
    get: async (id: string, by: 'api' | 'sse_open' = 'api'): Promise<Job | undefined> => {
      readModelReads.inc({ by });
      const heard = o.hub?.latest(id);
      try {
        // A job this gateway heard of does not wait the database's whole timeout to be answered.
        const read = d.jobs.get(id);
        read.catch(() => {}); // awaited below; a read outrun by the timeout must not go unhandled
        const doc = heard ? await Promise.race([read, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('read model slow')), 2000).unref())]) : await read;
        return o.hub && doc ? o.hub.latest(id, doc) : (doc ?? heard);
      } catch (err) {
        if (heard) return heard;
        throw err;
      }
    },
  };
  const ownedJob = (req: Request, res: Response) => getOwnedJob({ jobs: jobsView }, jobId(req), ownerFor(res));
  const submitter = new Submitter(d, { maxUploadBytes: o.maxUploadBytes, maxModelRuns: o.maxModelRuns, ledger: o.ledger, policy: o.policy ?? addressPolicy(), webhookSecret: o.webhookSecret, importTimeoutMs: o.importTimeoutMs ?? 120_000 }, jobsView);

  app.get('/api/jobs/:id', async (req, res) => {
    res.json(toView(await ownedJob(req, res)));
  });

  app.post('/api/jobs/:id/cancel', async (req, res) => {
    const job = await ownedJob(req, res);
    await cancelJob(d, job);
    res.status(202).json(toView(job));
  });

  app.delete('/api/jobs/:id', async (req, res) => {
    const job = await getOwnedJob(d, jobId(req), ownerFor(res));
    await deleteJob(d, job);
    res.status(204).end();
  });

  /**
   * Server-Sent Events: the job's state now, then every change as its events arrive from the bus
   * (the read model is read once, here; not polled). Subscribed before that read, so no event
   * falls between the two; events already in the document change nothing (the projection's rules),
   * so none is sent twice. `Last-Event-ID` (the state's `updated_at`) resumes a stream: what the
   * client has is not sent again. Without the bus (down, or none), the stream polls the read model.
   */
  app.get('/api/jobs/:id/events', async (req, res) => {
    const id = jobId(req);
    const owner = ownerFor(res);
    const heard: AnyEvent[] = [];
    let onEvent: (e: AnyEvent) => void = (e) => void heard.push(e);
    let resync = () => {};
    const unwatch = o.hub?.watch(id, { event: (e) => onEvent(e), resync: () => resync() });
    let job: Job;
    try {
      job = await getOwnedJob({ jobs: { get: (x) => jobsView.get(x, 'sse_open') } }, id, owner);
    } catch (err) {
      unwatch?.();
      throw err;
    }
    // SSE has its own heartbeat; the idle timeout is for uploads and stalled clients.
    req.socket.setTimeout(0);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write('retry: 1000\n\n');
    let closed = false;
    sseStreams.inc();
    // What the client already has (EventSource's Last-Event-ID: the state's updated_at).
    const resumeFrom = req.get('last-event-id') ?? '';
    let lastSent = '';
    let lastData = '';
    let lastWrite = Date.now();
    let lastHeard = Date.now();
    const timers: NodeJS.Timeout[] = [];
    const finish = () => {
      if (closed) return;
      closed = true;
      sseStreams.dec();
      unwatch?.();
      for (const t of timers) clearInterval(t);
      res.end();
    };
    req.on('close', finish);
    const send = (j: Job) => {
      if (closed || j.updated_at < lastSent) return; // never an older state than one sent
      if (!isFinished(j) && j.updated_at <= resumeFrom) return; // the client has it
      const data = JSON.stringify(toView(j));
      if (data === lastData) return;
      lastData = data;
      lastSent = j.updated_at;
      lastWrite = Date.now();
      res.write(`event: ${isFinished(j) ? j.status : 'progress'}\nid: ${j.updated_at}\ndata: ${data}\n\n`);
      if (isFinished(j)) finish();
    };
    const apply = (e: AnyEvent) => {
      lastHeard = Date.now();
      const r = project(job, e);
      if (r.outcome !== 'applied' || !r.job) return;
      job = r.job;
      send(job);
    };
    let reading = false;
    const reread = async () => {
      if (reading) return;
      reading = true;
      readModelReads.inc({ by: 'sse_poll' });
      const read = await d.jobs.get(id).then((j) => ({ j }), () => undefined).finally(() => (reading = false));
      if (closed || !read) return; // the database is down: what the bus brings is all there is
      const next = read.j;
      if (!next && !o.hub?.latest(id)) {
        res.write(`event: deleted\ndata: {"id":"${id}"}\n\n`);
        return finish();
      }
      if (next) {
        // The document may hold events this stream missed; what the hub heard is applied over it.
        const merged = o.hub ? o.hub.latest(id, next) : next;
        if (merged && (merged.updated_at > job.updated_at || isFinished(merged))) {
          job = merged;
          send(job);
        }
      }
    };
    send(job);
    for (const e of heard) apply(e);
    onEvent = apply;
    resync = () => void reread();
    // Polling only as the fallback: no hub, the hub down, or a stream that heard nothing for a while.
    const pollMs = o.ssePollMs ?? 250;
    timers.push(
      setInterval(() => {
        const quiet = Date.now() - lastHeard > (o.sseQuietPollMs ?? 30_000);
        if (o.hub?.live && !quiet) return;
        if (quiet) lastHeard = Date.now(); // a quiet stream reads once per quiet period
        void reread();
      }, pollMs),
      setInterval(() => {
        if (!closed && Date.now() - lastWrite > (o.sseKeepAliveMs ?? 15_000)) {
          res.write(': keep-alive\n\n');
          lastWrite = Date.now();
        }
      }, Math.min(1000, o.sseKeepAliveMs ?? 15_000)),
    );
    if (isFinished(job)) finish();
  });

  app.get('/api/jobs/:id/stems.zip', async (req, res) => {
    const job = await ownedJob(req, res);
    if (job.status !== 'completed') throw new StemflowError('JOB_NOT_COMPLETED', `the job is ${job.status}, it has no stems yet`, { status: 404 });
    const stem = basename(job.input.filename, extname(job.input.filename));
    res.status(200).set({ 'content-type': 'application/zip', 'content-disposition': contentDisposition(`${stem} - stems.zip`) });
    // Audio does not compress: store the entries, stream them one after the other.
    const zip = new ZipArchive({ store: true });
    zip.on('error', (err: Error) => {
      d.log.warn({ jobId: job.id, err: err.message }, 'zip stream failed');
      res.destroy(err);
    });
    zip.pipe(res);
    for (const s of job.stems) zip.append(await d.blobs.get(s.key), { name: `${stem} - ${s.name}.${ext[s.format]}` });
    await zip.finalize();
  });

  /** A stored file: a redirect to a presigned URL (S3), or streamed with Range support. */
  /**
   * The byte range a request asks for in a file of `total` bytes: one satisfiable range, or
   * undefined for the whole file (none asked, a malformed header, several ranges); 416 when it
   * asks only for bytes past the end.
   */
  const rangeOf = (req: Request, res: Response, total: number): { start: number; end: number } | undefined => {
    const header = req.get('range');
    if (!header) return undefined;
    const parsed = parseRange(total, header);
    if (parsed.type === 'bytes' && parsed.ranges.length === 0 && parsed.code & 2) {
      res.set('content-range', `bytes */${total}`);
      throw new StemflowError('RANGE_NOT_SATISFIABLE', `the file has ${total} bytes`, { status: 416 });
    }
    return parsed.type === 'bytes' && parsed.code === 0 && parsed.ranges.length === 1 ? parsed.ranges[0]! : undefined;
  };
  const sendFile = async (req: Request, res: Response, f: { key: string; bytes: number; name: string; ext: keyof typeof mime }) => {
    const url = await d.blobs.presignGet(f.key, o.presignSec ?? 3600, f.name);
    if (url) return void res.redirect(302, url);
    res.set({ 'accept-ranges': 'bytes', 'content-type': mime[f.ext], 'content-disposition': contentDisposition(f.name) });
    const r = rangeOf(req, res, f.bytes);
    if (r) {
      res.status(206).set({ 'content-range': `bytes ${r.start}-${r.end}/${f.bytes}`, 'content-length': String(r.end - r.start + 1) });
      return void (await d.blobs.get(f.key, { start: r.start, end: r.end })).on('error', (err) => res.destroy(err)).pipe(res);
    }
    res.status(200).set('content-length', String(f.bytes));
    (await d.blobs.get(f.key)).on('error', (err) => res.destroy(err)).pipe(res);
  };
  /** Whether a job is still in the read model (a delete removes it there, and its objects). */
  const stillThere = (id: string) => async () => (await d.jobs.get(id)) !== undefined;
  const songName = (job: Job) => basename(job.input.filename, extname(job.input.filename));
  const stemOf = (job: Job, name: unknown) => {
    const s = job.stems.find((x) => x.name === name);
    if (s) return s;
    const why = job.status === 'completed' ? `the job has no stem "${String(name).slice(0, 40)}"` : `the job is ${job.status}, it has no stems yet`;
    throw new StemflowError('STEM_NOT_FOUND', why, { status: 404 });
  };
  /** A finished stem's file, named after the song. */
  const sendStem = (req: Request, res: Response, job: Job, name: unknown) => {
    const s = stemOf(job, name);
    const e = ext[s.format];
    return sendFile(req, res, { key: s.key, bytes: s.bytes, name: `${songName(job)} - ${s.name}.${e}`, ext: e });
  };

  app.get('/api/jobs/:id/stems/:stem', async (req, res) => {
    const job = await ownedJob(req, res);
    if (!isFinished(job) && streamsWhileRunning(job.options) && outputStemNames(job.options).includes(req.params.stem as never)) return sendLiveStem(req, res, job, req.params.stem!);
    await sendStem(req, res, job, req.params.stem);
  });

  /**
   * A stem of a running job whose stems stream (clip=clamp): what is final now, then the rest as it
   * is made, in one response that ends when the stem is complete. The headers wait for the first
   * bytes; a WAV's length is known from the start (Content-Length, and one Range for seeking).
   */
  const sendLiveStem = async (req: Request, res: Response, job: Job, stem: string) => {
    // Quiet while the next piece is made (a model run, or a separator restarting): the connection's
    // idle timeout would cut a client that is only waiting. One that stops reading is cut by stallMs.
    req.socket.setTimeout(0);
    const deps: LiveDeps = {
      blobs: d.blobs,
      stallMs: o.liveStallMs ?? 60_000,
      job: async () => {
        const doc = await jobsView.get(job.id);
        return o.hub ? o.hub.latest(job.id, doc) : doc;
      },
      nextEvent: (ms) =>
        new Promise<void>((resolve) => {
          const t = setTimeout(done, ms);
          const stop = o.hub?.watch(job.id, { event: done, resync: done });
          req.once('close', done);
          function done() {
            clearTimeout(t);
            stop?.();
            req.off('close', done);
            resolve();
          }
        }),
    };
    const m = await waitForLiveStem(deps, job.id, stem, () => req.destroyed);
    if (req.destroyed) return;
    if (!m) {
      // The job ended before the stem was started: what it is now decides (a stem, or why not).
      return sendStem(req, res, await ownedJob(req, res), stem);
    }
    const e = ext[m.format];
    res.set({ 'content-type': m.contentType, 'content-disposition': contentDisposition(`${songName(job)} - ${stem}.${e}`), 'cache-control': 'no-store', 'x-stemflow-live': 'true' });
    let from = 0;
    let to: number | undefined;
    if (m.bytes !== null) {
      res.set('accept-ranges', 'bytes');
      const r = rangeOf(req, res, m.bytes);
      if (r) {
        from = r.start;
        to = r.end + 1;
        res.status(206).set({ 'content-range': `bytes ${r.start}-${r.end}/${m.bytes}`, 'content-length': String(to - from) });
      } else {
        to = m.bytes;
        res.status(200).set('content-length', String(m.bytes));
      }
    } else res.status(200);
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

  /**
   * A stem's waveform: min/max per block of `samples_per_pixel` frames, in the JSON format of
   * audiowaveform (peaks.js, waveform-data.js); computed once from the stem, then kept.
   */
  app.get('/api/jobs/:id/stems/:stem/peaks', async (req, res) => {
    const q = z.object({ samples_per_pixel: z.string().optional() }).strict().safeParse(req.query);
    const level = Number(q.data?.samples_per_pixel ?? 1024) as PeakLevel;
    if (!q.success || !PEAK_LEVELS.includes(level)) throw invalid('INVALID_QUERY', `samples_per_pixel must be one of ${PEAK_LEVELS.join(', ')}`);
    const job = await ownedJob(req, res);
    const s = stemOf(job, req.params.stem);
    const body = await stemPeaks(d.blobs, job, s, level, stillThere(job.id));
    res.set({ 'content-type': 'application/json; charset=utf-8', 'cache-control': 'private, max-age=86400' }).send(body);
  });

  /** The server's mixdown of some stems with gains (default: all at 1), in a format (default: the job's). */
  app.get('/api/jobs/:id/mix', async (req, res) => {
    const q = z.object({ stems: z.string().max(200).optional(), gains: z.string().max(400).optional(), format: AudioFormat.optional() }).strict().safeParse(req.query);
    if (!q.success) throw invalid('INVALID_QUERY', zodMessage(q.error));
    const job = await ownedJob(req, res);
    if (job.status !== 'completed') throw new StemflowError('JOB_NOT_COMPLETED', `the job is ${job.status}; a mix needs its stems`, { status: 404 });
    const picks = parseMix(job, q.data.stems, q.data.gains);
    const format = q.data.format ?? job.stems[0]!.format;
    const mixed = await stemMix(d.blobs, job, picks, format, stillThere(job.id));
    const e = ext[format];
    const label = picks.map((p) => (p.gain === 1 ? p.name : `${p.name} ${Math.round(20 * Math.log10(Math.max(p.gain, 1e-6)))} dB`)).join(' + ');
    await sendFile(req, res, { ...mixed, name: `${songName(job)} - ${label}.${e}`, ext: e });
  });

  app.use('/api', (req) => {
    throw new StemflowError('NOT_FOUND', `no endpoint ${req.method} ${req.path}`, { status: 404 });
  });

  // One place maps every error to a status and the JSON error body.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const { status, code, message } = mapError(err, o.maxUploadBytes);
    if (status >= 500) d.log.error({ err: describeError(err), path: req.path }, 'request failed');
    if (res.headersSent) {
      if (!res.writableEnded) res.destroy(); // a stream cut mid-way; an answer already sent stands
      return;
    }
    if (status === 503 && !res.get('retry-after')) res.set('retry-after', '5'); // a dependency, or the renders, busy for now
    res.status(status).json({ error: { code, message } });
  });
  return app;
}

function mapError(err: unknown, maxUploadBytes: number): { status: number; code: string; message: string } {
  if (err instanceof StemflowError) return { status: err.status, code: err.code, message: err.message };
  if (err instanceof multer.MulterError) {
    const m: Record<string, [number, string, string]> = {
      LIMIT_FILE_SIZE: [413, 'UPLOAD_TOO_LARGE', `the file is larger than the ${maxUploadBytes} bytes this server accepts`],
      LIMIT_UNEXPECTED_FILE: [400, 'UNEXPECTED_FILE', `expected exactly one file, in the field "file" (got field "${err.field ?? '?'}")`],
      LIMIT_FILE_COUNT: [400, 'UNEXPECTED_FILE', 'expected exactly one file, in the field "file"'],
      LIMIT_PART_COUNT: [400, 'TOO_MANY_PARTS', 'too many form parts'],
      LIMIT_FIELD_COUNT: [400, 'TOO_MANY_FIELDS', 'too many form fields'],
      LIMIT_FIELD_VALUE: [400, 'FIELD_TOO_LONG', `the field "${err.field ?? '?'}" is too long`],
    };
    const [status, code, message] = m[err.code] ?? [400, 'BAD_UPLOAD', err.message];
    return { status, code, message };
  }
  const e = err as { status?: number; statusCode?: number; type?: string; message?: string };
  const status = e.status ?? e.statusCode;
  if (status && status >= 400 && status < 500) return { status, code: 'BAD_REQUEST', message: e.message ?? 'bad request' };
  if (/Unexpected end of form|Malformed part header|Multipart: Boundary not found/i.test(e.message ?? '')) return { status: 400, code: 'BAD_UPLOAD', message: `the upload is malformed: ${e.message}` };
  return { status: 500, code: 'INTERNAL', message: 'something went wrong on our side; the error was logged' };
}

const swaggerPage = `<!doctype html><html><head><meta charset="utf-8"><title>stemflow API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head><body><div id="ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({ url: '/api/openapi.json', dom_id: '#ui' });</script></body></html>`;
