/** `stemflow submit`: upload to a running gateway, follow its SSE stream, download the stems. */
import { openAsBlob } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebStream } from 'node:stream/web';
import { createParser } from 'eventsource-parser';
import { fieldsFromOptions, type JobView } from '@stemflow/contracts';
import { UsageError, type CommonArgs } from './cli.js';
import { outDir, saveStems, type Io } from './output.js';
import { progressBar, type Progress } from './progress.js';

type Args = CommonArgs & { api: string; key: string | undefined; url?: string | undefined; callbackUrl?: string | undefined; idempotencyKey: string };

/** Submit attempts on a network error or a 503 (the same Idempotency-Key: never a second job). */
const SUBMIT_ATTEMPTS = 3;

export async function submitCommand(a: Args, io: Io): Promise<number> {
  const headers: Record<string, string> = a.key ? { authorization: `Bearer ${a.key}` } : {};
  const extra = a.callbackUrl ? { callback_url: a.callbackUrl } : {};
  let body: () => Promise<FormData | string>;
  let path: string;
  const contentType: Record<string, string> = {};
  if (a.url) {
    path = resolve(decodeURIComponent(basename(new URL(a.url).pathname)) || 'download');
    body = async () => JSON.stringify({ input_url: a.url, ...a.options, ...extra });
    contentType['content-type'] = 'application/json';
    if (!a.quiet) io.stderr.write(`asking ${a.api} to fetch ${a.url}\n`);
  } else {
    path = resolve(a.file);
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile()) throw new UsageError(`no such file: ${a.file}`);
    body = async () => {
      const form = new FormData();
      for (const [k, v] of Object.entries({ ...fieldsFromOptions(a.options), ...extra })) form.append(k, v);
      // openAsBlob streams the file from disk as fetch sends it: nothing is read whole into memory.
      form.append('file', await openAsBlob(path), basename(path));
      return form;
    };
    if (!a.quiet) io.stderr.write(`uploading ${basename(path)} (${(st.size / 1e6).toFixed(1)} MB) to ${a.api}\n`);
  }
  let res: Response | undefined;
  for (let attempt = 1; !res; attempt++) {
    try {
      res = await call(a.api, '/api/jobs', { method: 'POST', body: await body(), headers: { ...headers, ...contentType, 'idempotency-key': a.idempotencyKey } });
    } catch (err) {
      const transient = err instanceof CallError ? err.status === 503 : true;
      if (!transient || attempt >= SUBMIT_ATTEMPTS) throw err;
      if (!a.quiet) io.stderr.write(`${(err as Error).message}; trying again\n`);
      await new Promise((r) => setTimeout(r, 1000 * attempt));
    }
  }
  const { id } = (await res.json()) as { id: string };
  if (!a.quiet) io.stderr.write(`job ${id}\n`);

  const cancel = () => void fetch(`${a.api}/api/jobs/${id}/cancel`, { method: 'POST', headers }).catch(() => {});
  process.once('SIGINT', cancel);
  let job: JobView;
  try {
    job = await follow(a.api, id, headers, progressBar(io.stderr, a.quiet));
  } finally {
    process.off('SIGINT', cancel);
  }
  if (job.status !== 'completed') {
    io.stderr.write(`stemflow: the job ${job.status}${job.error_message ? `: ${job.error_message}` : ''}\n`);
    return job.status === 'canceled' ? 130 : 1;
  }
  const files = await saveStems(outDir(a.out, path), job.stems, async (s) => {
    // The gateway answers with the file, or a redirect to a presigned store URL (fetch follows it).
    const r = await call(a.api, s.url, { headers });
    return Readable.fromWeb(r.body as WebStream<Uint8Array>);
  });
  io.stdout.write(files.map((f) => `${f}\n`).join(''));
  return 0;
}

/** A request whose error answer becomes a sentence: "the server refused …: <its message>". */
async function call(api: string, path: string, init: RequestInit): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(`${api}${path}`, init);
  } catch (err) {
    throw new Error(`cannot reach ${api}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
  }
  if (res.ok) return res;
  const body = (await res.json().catch(() => undefined)) as { detail?: string } | undefined;
  throw new CallError(res.status, `the server answered ${res.status} to ${init.method ?? 'GET'} ${path}: ${body?.detail ?? res.statusText}`);
}

class CallError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Reads the job's SSE stream until a terminal event; reconnects if the stream drops. */
async function follow(api: string, id: string, headers: Record<string, string>, bar: Progress): Promise<JobView> {
  let drops = 0;
  try {
    for (;;) {
      let last: JobView | undefined;
      let ended = false;
      const parser = createParser({
        onEvent(ev) {
          if (!ev.data) return;
          last = JSON.parse(ev.data) as JobView;
          bar.update({ stage: last.stage ?? last.status, progress: last.progress, etaSec: last.eta_sec });
          if (ev.event === 'completed' || ev.event === 'failed' || ev.event === 'canceled') ended = true;
        },
      });
      try {
        const res = await call(api, `/api/jobs/${id}/events`, { headers: { ...headers, accept: 'text/event-stream' } });
        const decoder = new TextDecoder();
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          parser.feed(decoder.decode(chunk, { stream: true }));
          if (ended && last) return last;
        }
        if (ended && last) return last;
      } catch (err) {
        if (++drops > 30) throw err;
      }
      await new Promise((r) => setTimeout(r, 1000)); // the stream ended early (a restart): reconnect
    }
  } finally {
    bar.stop();
  }
}
