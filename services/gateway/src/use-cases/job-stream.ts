/**
 * A job's event stream: its state now, then every change as its events arrive from the bus (the
 * read model is read once, when the stream opens; not polled). Subscribed before that read, so no
 * event falls between the two; events already in the document change nothing (the projection's
 * rules), so none is sent twice. A client that says what it has (Last-Event-ID: the state's
 * `updated_at`) is not sent it again. Without the bus (down, or none), the stream polls the read
 * model. The stream ends at the job's last state, or when the job is deleted.
 */
import { isFinished, type AnyEvent, type Job } from '@stemflow/contracts';
import { project, type JobStore } from '@stemflow/jobs';
import { readModelReads, sseStreams } from '@stemflow/telemetry';
import type { EventsHub } from './events-hub.js';
import { getOwnedJob, toView } from './jobs.js';
import type { JobReader } from './job-view.js';

/** Where a stream's events go (the route writes them as SSE). */
export type StreamSink = {
  event(name: string, id: string | undefined, data: unknown): void;
  comment(text: string): void;
  end(): void;
};

export type StreamDeps = {
  jobs: Pick<JobStore, 'get'>;
  reader: JobReader;
  hub?: EventsHub | undefined;
  /** How often a stream without the bus reads the read model. */
  pollMs: number;
  /** A stream that heard nothing from the bus this long reads the read model once (an event it missed). */
  quietPollMs: number;
  /** A quiet stream gets a comment this often, so proxies keep it open. */
  keepAliveMs: number;
};

/** An opened stream: `start` sends to the sink until the job ends or `close` is called. */
export type OpenedStream = { upToDate: true } | { upToDate: false; start(sink: StreamSink): void; close(): void };

/**
 * Opens a job's stream for its owner (404 for another key's or a missing job). `upToDate`: the
 * client already has the job's last state, nothing more will come.
 */
export async function openJobStream(d: StreamDeps, id: string, owner: string | null | undefined, resumeFrom: string): Promise<OpenedStream> {
  const heard: AnyEvent[] = [];
  let onEvent: (e: AnyEvent) => void = (e) => void heard.push(e);
  let resync = () => {};
  const unwatch = d.hub?.watch(id, { event: (e) => onEvent(e), resync: () => resync() });
  let job: Job;
  try {
    job = await getOwnedJob({ jobs: { get: (x) => d.reader.get(x, 'sse_open') } }, id, owner);
  } catch (err) {
    unwatch?.();
    throw err;
  }
  if (isFinished(job) && resumeFrom >= job.updated_at) {
    unwatch?.();
    return { upToDate: true };
  }

  let sink: StreamSink | undefined;
  let closed = false;
  let lastSent = '';
  let lastData = '';
  let lastWrite = Date.now();
  let lastHeard = Date.now();
  const timers: NodeJS.Timeout[] = [];
  const finish = () => {
    if (closed) return;
    closed = true;
    if (sink) sseStreams.dec();
    unwatch?.();
    for (const t of timers) clearInterval(t);
    sink?.end();
  };
  const send = (j: Job) => {
    if (closed || !sink || j.updated_at < lastSent) return; // never an older state than one sent
    if (!isFinished(j) && j.updated_at <= resumeFrom) return; // the client has it
    const data = toView(j);
    const text = JSON.stringify(data);
    if (text === lastData) return;
    lastData = text;
    lastSent = j.updated_at;
    lastWrite = Date.now();
    sink.event(isFinished(j) ? j.status : 'progress', j.updated_at, data);
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
    if (!read.j) {
      // Deleted (on this gateway or another): the stream ends, and says why.
      sink?.event('deleted', undefined, { id });
      return finish();
    }
    // The document may hold events this stream missed; what the hub heard is applied over it.
    const merged = d.hub ? d.hub.latest(id, read.j) : read.j;
    if (merged && (merged.updated_at > job.updated_at || isFinished(merged))) {
      job = merged;
      send(job);
    }
  };

  return {
    upToDate: false,
    close: finish,
    start(s: StreamSink) {
      if (closed) return s.end();
      sink = s;
      sseStreams.inc();
      send(job);
      for (const e of heard) apply(e);
      onEvent = apply;
      resync = () => void reread();
      if (closed) return;
      // Polling only as the fallback: no hub, the hub down, or a stream that heard nothing for a while.
      timers.push(
        setInterval(() => {
          const quiet = Date.now() - lastHeard > d.quietPollMs;
          if (d.hub?.live && !quiet) return;
          if (quiet) lastHeard = Date.now(); // a quiet stream reads once per quiet period
          void reread();
        }, d.pollMs),
        setInterval(() => {
          if (!closed && Date.now() - lastWrite > d.keepAliveMs) {
            sink?.comment('keep-alive');
            lastWrite = Date.now();
          }
        }, Math.min(1000, d.keepAliveMs)),
      );
    },
  };
}
