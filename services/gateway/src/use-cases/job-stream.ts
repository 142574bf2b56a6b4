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
  const stream = new JobStream(d, id, resumeFrom);
  // Subscribed before the read: an event published meanwhile waits in `heard`.
  const unwatch = d.hub?.watch(id, { event: (e) => stream.onEvent(e), resync: () => stream.onResync() });
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
  stream.opened(job, unwatch);
  return { upToDate: false, start: (sink) => stream.start(sink), close: () => stream.finish() };
}

class JobStream {
  private job!: Job;
  private sink: StreamSink | undefined;
  private unwatch: (() => void) | undefined;
  /** Events heard before the stream started. */
  private heard: AnyEvent[] | undefined = [];
  private closed = false;
  private lastSent = '';
  private lastData = '';
  private lastWrite = Date.now();
  private lastHeard = Date.now();
  private reading = false;
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly d: StreamDeps,
    private readonly id: string,
    private readonly resumeFrom: string,
  ) {}

  opened(job: Job, unwatch: (() => void) | undefined) {
    this.job = job;
    this.unwatch = unwatch;
  }

  onEvent(e: AnyEvent) {
    if (this.heard) this.heard.push(e);
    else this.apply(e);
  }

  onResync() {
    if (!this.heard) void this.reread();
  }

  start(sink: StreamSink) {
    if (this.closed) return sink.end();
    this.sink = sink;
    sseStreams.inc();
    this.send(this.job);
    const heard = this.heard ?? [];
    this.heard = undefined;
    for (const e of heard) this.apply(e);
    if (this.closed) return;
    // Polling only as the fallback: no hub, the hub down, or a stream that heard nothing for a while.
    this.timers.push(
      setInterval(() => {
        const quiet = Date.now() - this.lastHeard > this.d.quietPollMs;
        if (this.d.hub?.live && !quiet) return;
        if (quiet) this.lastHeard = Date.now(); // a quiet stream reads once per quiet period
        void this.reread();
      }, this.d.pollMs),
      setInterval(() => {
        if (!this.closed && Date.now() - this.lastWrite > this.d.keepAliveMs) {
          this.sink?.comment('keep-alive');
          this.lastWrite = Date.now();
        }
      }, Math.min(1000, this.d.keepAliveMs)),
    );
  }

  finish() {
    if (this.closed) return;
    this.closed = true;
    if (this.sink) sseStreams.dec();
    this.unwatch?.();
    for (const t of this.timers) clearInterval(t);
    this.sink?.end();
  }

  private send(j: Job) {
    if (this.closed || !this.sink || j.updated_at < this.lastSent) return; // never an older state than one sent
    if (!isFinished(j) && j.updated_at <= this.resumeFrom) return; // the client has it
    const data = toView(j);
    const text = JSON.stringify(data);
    if (text === this.lastData) return;
    this.lastData = text;
    this.lastSent = j.updated_at;
    this.lastWrite = Date.now();
    this.sink.event(isFinished(j) ? j.status : 'progress', j.updated_at, data);
    if (isFinished(j)) this.finish();
  }

  private apply(e: AnyEvent) {
    this.lastHeard = Date.now();
    const r = project(this.job, e);
    if (r.outcome !== 'applied' || !r.job) return;
    this.job = r.job;
    this.send(this.job);
  }

  /** Reads the read model once: what this stream missed, or that the job is gone. */
  private async reread() {
    if (this.reading) return;
    this.reading = true;
    readModelReads.inc({ by: 'sse_poll' });
    const read = await this.d.jobs.get(this.id).then((j) => ({ j }), () => undefined).finally(() => (this.reading = false));
    if (this.closed || !read) return; // the database is down: what the bus brings is all there is
    if (!read.j) {
      // Deleted (on this gateway or another): the stream ends, and says why.
      this.sink?.event('deleted', undefined, { id: this.id });
      return this.finish();
    }
    // The document may hold events this stream missed; what the hub heard is applied over it.
    const merged = this.d.hub ? this.d.hub.latest(this.id, read.j) : read.j;
    if (merged && (merged.updated_at > this.job.updated_at || isFinished(merged))) {
      this.job = merged;
      this.send(this.job);
    }
  }
}
