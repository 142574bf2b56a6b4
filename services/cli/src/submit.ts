/** `stemflow submit`: upload to a running gateway, follow its SSE stream, download the stems. */
import { openAsBlob } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream as WebStream } from 'node:stream/web';
import { createParser } from 'eventsource-parser';
import type { JobView } from '@stemflow/contracts';
import { UsageError, type CommonArgs } from './cli.js';
import { outDir, saveStems, type Io } from './output.js';
import { progressBar, type Progress } from './progress.js';

type Args = CommonArgs & { api: string; key: string | undefined };

export async function submitCommand(a: Args, io: Io): Promise<number> {
  const path = resolve(a.file);
  const st = await stat(path).catch(() => undefined);
  if (!st?.isFile()) throw new UsageError(`no such file: ${a.file}`);
  const headers: Record<string, string> = a.key ? { authorization: `Bearer ${a.key}` } : {};

  const form = new FormData();
  const o = a.options;
  form.append('stems', o.stems.join(','));
  if (o.two_stems) form.append('two_stems', o.two_stems);
  form.append('format', o.format);
  form.append('shifts', String(o.shifts));
  form.append('overlap', String(o.overlap));
  form.append('clip', o.clip);
  // openAsBlob streams the file from disk as fetch sends it: nothing is read whole into memory.
  form.append('file', await openAsBlob(path), basename(path));
  if (!a.quiet) io.stderr.write(`uploading ${basename(path)} (${(st.size / 1e6).toFixed(1)} MB) to ${a.api}\n`);
  const res = await call(a.api, '/api/jobs', { method: 'POST', body: form, headers });
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
  const body = (await res.json().catch(() => undefined)) as { error?: { message?: string } } | undefined;
  throw new Error(`the server answered ${res.status} to ${init.method ?? 'GET'} ${path}: ${body?.error?.message ?? res.statusText}`);
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
