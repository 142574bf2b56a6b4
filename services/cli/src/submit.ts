/**
 * `stemflow submit`: upload to a running gateway, follow its event stream, download the stems —
 * through @stemflow/client, the client generated from the API's OpenAPI document.
 */
import { openAsBlob } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebStream } from 'node:stream/web';
import { ProblemError, asForm, followJob, problemFrom, problemOf, stemflowClient, type Job, type StemflowClient } from '@stemflow/client';
import { fieldsFromOptions } from '@stemflow/contracts';
import { UsageError, type CommonArgs } from './index.js';
import { outDir, saveStems, type Io } from './output.js';
import { progressBar } from './progress.js';

type Args = CommonArgs & { api: string; key: string | undefined; url?: string | undefined; callbackUrl?: string | undefined; idempotencyKey: string };

/** Submit attempts on a network error or a 503 (the same Idempotency-Key: never a second job). */
const SUBMIT_ATTEMPTS = 3;

export async function submitCommand(a: Args, io: Io): Promise<number> {
  const api = stemflowClient({ baseUrl: a.api, apiKey: a.key });
  const path = a.url ? resolve(decodeURIComponent(basename(new URL(a.url).pathname)) || 'download') : resolve(a.file);
  let id: string | undefined;
  for (let attempt = 1; !id; attempt++) {
    try {
      id = await create(api, a, path, io);
    } catch (err) {
      const transient = err instanceof ProblemError ? err.problem.status === 503 : !(err instanceof UsageError);
      if (!transient || attempt >= SUBMIT_ATTEMPTS) throw explained(err, a.api, 'POST /api/jobs');
      if (!a.quiet) io.stderr.write(`${(err as Error).message}; trying again\n`);
      await new Promise((r) => setTimeout(r, 1000 * attempt));
    }
  }
  if (!a.quiet) io.stderr.write(`job ${id}\n`);

  const jobId = id;
  const cancel = () => void api.POST('/api/jobs/{id}/cancel', { params: { path: { id: jobId } } }).catch(() => {});
  process.once('SIGINT', cancel);
  const bar = progressBar(io.stderr, a.quiet);
  let job: Job;
  try {
    job = await followJob(api, jobId, { onEvent: ({ job: j }) => bar.update({ stage: j.stage ?? j.status, progress: j.progress, etaSec: j.eta_sec }) }).catch((err) => {
      throw explained(err, a.api, `GET /api/jobs/${jobId}/events`);
    });
  } finally {
    bar.stop();
    process.off('SIGINT', cancel);
  }
  if (job.status !== 'completed') {
    io.stderr.write(`stemflow: the job ${job.status}${job.error_message ? `: ${job.error_message}` : ''}\n`);
    return job.status === 'canceled' ? 130 : 1;
  }
  const files = await saveStems(outDir(a.out, path), job.stems, async (s) => {
    // The gateway answers with the file, or a redirect to a presigned store URL (fetch follows it).
    const r = await api.GET('/api/jobs/{id}/stems/{stem}', { params: { path: { id: jobId, stem: s.name } }, parseAs: 'stream' });
    if (!r.response.ok || !r.data) throw explained(new ProblemError(await problemOf(r.response)), a.api, `GET ${s.url}`);
    return Readable.fromWeb(r.data as WebStream<Uint8Array>);
  });
  io.stdout.write(files.map((f) => `${f}\n`).join(''));
  return 0;
}

/** POST /api/jobs: the file (streamed from disk as fetch sends it) or the URL; the new job's id. */
async function create(api: StemflowClient, a: Args, path: string, io: Io): Promise<string> {
  const headers = { 'Idempotency-Key': a.idempotencyKey };
  const extra = a.callbackUrl ? { callback_url: a.callbackUrl } : {};
  if (a.url) {
    if (!a.quiet) io.stderr.write(`asking ${a.api} to fetch ${a.url}\n`);
    const r = await api.POST('/api/jobs', { body: { input_url: a.url, ...a.options, ...extra } as never, headers }).catch(unreachable(a.api));
    if (!r.data) throw new ProblemError(problemFrom(r.error, r.response));
    return r.data.id;
  }
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile()) throw new UsageError(`no such file: ${a.file}`);
  if (!a.quiet) io.stderr.write(`uploading ${basename(path)} (${(st.size / 1e6).toFixed(1)} MB) to ${a.api}\n`);
  const file = new File([await openAsBlob(path)], basename(path));
  const r = await api.POST('/api/jobs', { body: { ...fieldsFromOptions(a.options), ...extra, file } as never, bodySerializer: asForm, headers }).catch(unreachable(a.api));
  if (!r.data) throw new ProblemError(problemFrom(r.error, r.response));
  return r.data.id;
}

const unreachable = (api: string) => (err: Error & { cause?: Error }) => {
  throw new Error(`cannot reach ${api}: ${err.cause?.message ?? err.message}`);
};

/** An error as the sentence the CLI prints: "the server answered 415 to POST /api/jobs: <detail>". */
function explained(err: unknown, api: string, what: string): Error {
  if (err instanceof ProblemError) return Object.assign(new Error(`the server answered ${err.problem.status} to ${what}: ${err.problem.detail}`), { status: err.problem.status });
  return err instanceof Error ? err : new Error(String(err));
}
