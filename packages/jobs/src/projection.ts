/**
 * The job read model's rules, as one pure function both adapters use:
 * - an event already applied (by id) changes nothing;
 * - a job never moves backwards: stage rank first, then progress;
 * - completed, failed and canceled are final: the first terminal event wins;
 * - facts (the decoded duration) are recorded whatever the state, so every arrival order of one
 *   job's events ends in the same document;
 * - updated_at is the latest event time applied, created_at the job.created time.
 */
import { DECODE_SHARE, isFinished, type AnyEvent, type Job, type JobStage } from '@stemflow/contracts';

export { DECODE_SHARE };
const RANK: Record<JobStage, number> = { importing: 1, decoding: 2, separating: 3, encoding: 4 };
const MAX_REMEMBERED_EVENTS = 500;

export type Outcome = 'applied' | 'duplicate' | 'stale' | 'unknown-job';

const rank = (job: Pick<Job, 'status' | 'stage'>) => (job.stage ? RANK[job.stage] : job.status === 'pending' ? 0 : RANK.decoding);

/** A new pending job from its job.created event. */
export function jobFromCreated(e: Extract<AnyEvent, { type: 'job.created' }>): Job {
  const imp = e.payload.import;
  return {
    id: e.jobId,
    owner: e.payload.owner ?? null,
    status: 'pending',
    stage: null,
    progress: 0,
    eta_sec: null,
    error_message: null,
    error_code: null,
    created_at: e.occurredAt,
    updated_at: e.occurredAt,
    input: e.payload.input ?? { key: imp!.key, filename: imp!.filename, url: imp!.url },
    options: e.payload.options,
    import: imp ? { url: imp.url, received_bytes: 0, total_bytes: null, done: false } : null,
    stems: [],
    output: null,
    ready_sec: 0,
    report: null,
    webhook: e.payload.webhook ? { url: e.payload.webhook.url, status: 'pending', attempts: 0, last_status: null, last_error: null, next_attempt_at: null } : null,
    applied_events: [e.id],
  };
}

export function project(job: Job | undefined, e: AnyEvent): { outcome: Outcome; job?: Job } {
  if (!job) return e.type === 'job.created' ? { outcome: 'applied', job: jobFromCreated(e) } : { outcome: 'unknown-job' };
  if (job.applied_events.includes(e.id)) return { outcome: 'duplicate' };

  const next: Job = { ...job, input: { ...job.input } };
  let changed = false;
  const set = <K extends keyof Job>(k: K, v: Job[K]) => {
    if (JSON.stringify(next[k]) !== JSON.stringify(v)) {
      next[k] = v;
      changed = true;
    }
  };
  const live = !isFinished(job);

  switch (e.type) {
    case 'job.created':
      // The gateway inserted this document before publishing: nothing new.
      break;
    case 'job.imported': {
      // What was fetched: a fact, recorded whatever the status (the decoded duration stays).
      const input = { ...e.payload.input, ...(next.input.duration_sec !== undefined ? { duration_sec: next.input.duration_sec } : {}) };
      set('input', input);
      set('import', { url: job.import?.url ?? e.payload.input.url ?? '', received_bytes: e.payload.input.size, total_bytes: e.payload.input.size, done: true });
      break;
    }
    case 'job.decoded':
      if (next.input.duration_sec !== e.payload.durationSec) {
        next.input.duration_sec = e.payload.durationSec;
        changed = true;
      }
      if (e.payload.output && !next.output) {
        const o = e.payload.output;
        set('output', { sample_rate: o.sampleRate, frames: o.frames, format: o.format });
      }
      if (live && (rank(job) < RANK.separating || (rank(job) === RANK.separating && job.progress < DECODE_SHARE))) {
        set('status', 'processing');
        set('stage', 'separating');
        set('progress', Math.max(job.progress, DECODE_SHARE));
      }
      break;
    case 'job.progress': {
      // How much of the stems is final: a fact that only grows, whatever the status.
      // (A document written before 2026-12 has no ready_sec.)
      if (e.payload.readySec !== undefined && e.payload.readySec > (next.ready_sec ?? 0)) set('ready_sec', e.payload.readySec);
      // An import's bytes so far: they only grow, and stop once it is stored.
      const b = e.payload.bytes;
      if (b && job.import && !job.import.done && (b.received > job.import.received_bytes || (b.total !== undefined && job.import.total_bytes === null))) {
        set('import', { ...job.import, received_bytes: b.received, total_bytes: b.total ?? job.import.total_bytes });
      }
      const r = RANK[e.payload.stage];
      if (live && (rank(job) < r || (rank(job) === r && job.progress < e.payload.progress))) {
        set('status', 'processing');
        set('stage', e.payload.stage);
        set('progress', Math.max(job.progress, e.payload.progress));
        set('eta_sec', e.payload.etaSec ?? null);
      }
      break;
    }
    case 'job.completed':
      // A reused job has no job.decoded: its duration comes with the completion (the same fact).
      if (e.payload.durationSec !== undefined && next.input.duration_sec === undefined) {
        next.input.duration_sec = e.payload.durationSec;
        changed = true;
      }
      if (live) {
        set('status', 'completed');
        set('stage', null);
        set('progress', 1);
        set('eta_sec', null);
        set('stems', e.payload.stems);
        if (e.payload.report) set('report', e.payload.report);
      }
      break;
    case 'job.failed':
      if (live) {
        set('status', 'failed');
        set('eta_sec', null);
        set('error_message', e.payload.reason);
        set('error_code', e.payload.code);
      }
      break;
    case 'job.canceled':
      if (live) {
        set('status', 'canceled');
        set('eta_sec', null);
      }
      break;
    case 'job.webhook': {
      // A fact about the delivery, after the job ended: recorded whatever the status. A delivery
      // once made stays made (a later failure of a second terminal event does not undo it); an
      // attempt heard after a later one, or after the outcome, changes nothing.
      const cur = job.webhook;
      const p = e.payload;
      if (cur?.status === 'delivered' && p.outcome !== 'delivered') break;
      if (p.outcome === 'retrying' && cur && (cur.status !== 'pending' || cur.attempts >= p.attempts)) break;
      set('webhook', {
        url: p.url,
        status: p.outcome === 'retrying' ? 'pending' : p.outcome,
        attempts: p.attempts,
        last_status: p.status ?? null,
        last_error: p.outcome === 'delivered' ? null : (p.reason ?? `HTTP ${p.status ?? '?'}`),
        next_attempt_at: p.outcome === 'retrying' ? (p.nextAttemptAt ?? null) : null,
      });
      break;
    }
  }
  if (!changed) return { outcome: 'stale' };
  if (e.occurredAt > next.updated_at) next.updated_at = e.occurredAt;
  // Progress and ready_sec are monotone, so a repeated progress event is already a no-op: only the ids of the
  // other events are remembered, which keeps a long job's document small.
  if (e.type !== 'job.progress') next.applied_events = [...job.applied_events, e.id].slice(-MAX_REMEMBERED_EVENTS);
  return { outcome: 'applied', job: next };
}
