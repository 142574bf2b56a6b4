/**
 * A typed client for stemflow's HTTP API. The calls are openapi-fetch over the types generated
 * from the OpenAPI document (api.ts), so a request or an answer the document does not allow is a
 * compile error; `followJob` reads a job's Server-Sent Events with fetch (EventSource cannot send
 * an API key), resumes with Last-Event-ID when the stream drops, and ends at the job's last state.
 *
 *   const api = stemflowClient({ baseUrl: 'http://localhost:8000', apiKey });
 *   const { data, error } = await api.POST('/api/jobs', { body: { file, stems: 'vocals,drums' }, bodySerializer: asForm });
 *   const job = await followJob(api, data!.id, { onEvent: (e) => console.log(e.job.progress) });
 */
import createClient, { type Client } from 'openapi-fetch';
import { createParser } from 'eventsource-parser';
import type { components, paths } from './api.js';

export type { components, paths } from './api.js';
export type Job = components['schemas']['Job'];
export type Problem = components['schemas']['Problem'];
export type StemflowClient = Client<paths> & { readonly baseUrl: string; readonly headers: Record<string, string>; readonly fetch: typeof fetch };

export type ClientOptions = { baseUrl: string; apiKey?: string | undefined; fetch?: typeof fetch };

/** The API's calls, with the key sent on each. */
export function stemflowClient(o: ClientOptions): StemflowClient {
  const baseUrl = o.baseUrl.replace(/\/+$/, '');
  const headers: Record<string, string> = o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {};
  const f = o.fetch ?? globalThis.fetch;
  const client = createClient<paths>({ baseUrl, headers, fetch: f });
  return Object.assign(client, { baseUrl, headers, fetch: f });
}

/** A multipart body from an object of fields (a Blob stays a file; other values become text). */
export function asForm(body: Record<string, unknown>): FormData {
  const form = new FormData();
  for (const [k, v] of Object.entries(body)) {
    if (v === undefined) continue;
    if (v instanceof Blob) form.append(k, v, (v as File).name ?? 'upload');
    else form.append(k, Array.isArray(v) ? v.join(',') : String(v));
  }
  return form;
}

/** An error answer of the API: its problem details. */
export class ProblemError extends Error {
  constructor(readonly problem: Problem) {
    super(`${problem.status} ${problem.code}: ${problem.detail}`);
    this.name = 'ProblemError';
  }
}

/** The problem of an error response (or one made from its status, for a body that is not one). */
export async function problemOf(res: Response): Promise<Problem> {
  return problemFrom(await res.json().catch(() => undefined), res);
}

/** An openapi-fetch `error` as a problem (a body that is not one, e.g. from a proxy, made from the status). */
export function problemFrom(error: unknown, res: Response): Problem {
  const body = error as Partial<Problem> | undefined;
  if (body && typeof body === 'object' && body.code && body.detail) return body as Problem;
  return { type: 'about:blank', title: res.statusText, status: res.status, detail: `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`, instance: new URL(res.url || 'http://x/').pathname, code: 'INTERNAL' };
}

export type JobEvent = { event: 'progress' | 'completed' | 'failed' | 'canceled'; id: string; job: Job };
export type FollowOptions = {
  /** Each state as it arrives. */
  onEvent?: (e: JobEvent) => void;
  signal?: AbortSignal;
  /** Resume after this event (an earlier stream's last `id`). */
  lastEventId?: string;
  /** Reconnections after a dropped stream before giving up (default 30). */
  maxReconnects?: number;
};

const TERMINAL = new Set(['completed', 'failed', 'canceled']);

/**
 * Follows a job until it completes, fails or is canceled, and returns that last state. A dropped
 * stream is resumed (after the server's `retry`, with Last-Event-ID), so no state is missed or
 * seen twice. A deleted job, or any error answer, throws a ProblemError.
 */
export async function followJob(api: StemflowClient, id: string, o: FollowOptions = {}): Promise<Job> {
  let lastId = o.lastEventId;
  let last: Job | undefined;
  let retryMs = 1000;
  for (let drops = 0; ; drops++) {
    try {
      const res = await api.fetch(`${api.baseUrl}/api/jobs/${encodeURIComponent(id)}/events`, {
        headers: { ...api.headers, accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) },
        ...(o.signal ? { signal: o.signal } : {}),
      });
      // The client already has the last event: the job as it ended.
      if (res.status === 204) return last ?? (await getJob(api, id));
      if (!res.ok) throw new ProblemError(await problemOf(res));
      let ended: Job | undefined;
      let deleted = false;
      const parser = createParser({
        onRetry: (ms) => (retryMs = ms),
        onEvent(ev) {
          if (ev.event === 'deleted') return void (deleted = true);
          if (!ev.data) return;
          const job = JSON.parse(ev.data) as Job;
          last = job;
          if (ev.id) lastId = ev.id;
          const name = (ev.event ?? 'progress') as JobEvent['event'];
          o.onEvent?.({ event: name, id: ev.id ?? '', job });
          if (TERMINAL.has(name)) ended = job;
        },
      });
      const decoder = new TextDecoder();
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        parser.feed(decoder.decode(chunk, { stream: true }));
        if (ended || deleted) break;
      }
      if (deleted) throw new ProblemError({ type: '/api/problems/JOB_NOT_FOUND', title: 'No such job', status: 404, detail: `the job ${id} was deleted`, instance: `/api/jobs/${id}/events`, code: 'JOB_NOT_FOUND' });
      if (ended) return ended;
    } catch (err) {
      if (err instanceof ProblemError || o.signal?.aborted || drops >= (o.maxReconnects ?? 30)) throw err;
    }
    await new Promise((r) => setTimeout(r, retryMs));
  }
}

async function getJob(api: StemflowClient, id: string): Promise<Job> {
  const { data, error, response } = await api.GET('/api/jobs/{id}', { params: { path: { id } } });
  if (!data) throw new ProblemError(problemFrom(error, response));
  return data;
}
