/**
 * Job events pushed to this gateway's clients. Each gateway consumes every `job.*` event on a
 * queue of its own (RabbitMQ: exclusive, auto-delete; embedded: the in-process bus), so N gateways
 * each see every event, and fans them out in memory to the SSE streams open on it. A stream reads
 * the read model once, when it opens; from then on it is driven by events as they are published,
 * not by the projection's lag, and keeps going while the database is down.
 *
 * The hub also keeps each recent job's last events (creation, decoding and terminal events, and
 * the newest progress), so that a stream opening now starts from the newest state this gateway
 * saw even when the read model lags behind it, and so that a job this gateway saw created can be
 * found (owner, state) while the database is down.
 */
import type { EventBus, Subscription } from '@stemflow/bus';
import { EVENT_NAMES, gatewayEventsQueue, type AnyEvent, type EventName, type Job } from '@stemflow/contracts';
import { project } from '@stemflow/jobs';
import type { Logger } from '@stemflow/telemetry';
import { v7 as uuidv7 } from 'uuid';

export type StreamListener = {
  /** An event of the watched job, as it arrives. */
  event(e: AnyEvent): void;
  /** The hub was down and is live again: events may have been missed, read the read model once. */
  resync(): void;
};

const JOBS_KEPT = 5_000;
const PROGRESS_KEPT = 8;
const KEEP_MS = 6 * 3600_000;

export class EventsHub {
  private readonly listeners = new Map<string, Set<StreamListener>>();
  private readonly recent = new Map<string, { events: AnyEvent[]; at: number }>();
  /** Jobs deleted through this gateway (kept a while: their late events are dropped). */
  private readonly deleted = new Map<string, number>();
  private sub: Subscription | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  /** Whether events are arriving from the bus (else streams fall back to polling the read model). */
  live = false;
  /** The bus's connection count when last seen. */
  private sessions: number | undefined;

  private constructor(
    private readonly bus: EventBus,
    private readonly log: Logger,
  ) {}

  static async start(bus: EventBus, log: Logger, o: { healthEveryMs?: number } = {}): Promise<EventsHub> {
    const hub = new EventsHub(bus, log);
    const handlers = Object.fromEntries(EVENT_NAMES.map((n: EventName) => [n, async (e: AnyEvent) => hub.dispatch(e)]));
    hub.sub = await bus.subscribe(gatewayEventsQueue(uuidv7()), handlers);
    const first = await bus.health();
    hub.live = first.ok;
    hub.sessions = first.sessions;
    // The bus reconnects by itself and declares this gateway's queue again (empty): streams that
    // were open meanwhile read the read model once when events flow again.
    hub.watchdog = setInterval(() => {
      void bus.health().then(
        (h) => hub.observe(h),
        () => hub.setLive(false),
      );
    }, o.healthEveryMs ?? 1000);
    hub.watchdog.unref();
    return hub;
  }

  /**
   * The bus as the watchdog saw it. A reconnect faster than its tick never shows as down, yet the
   * gateway's queue (exclusive) went with the old connection and what was published meanwhile
   * never came: a new session counts as a reconnect.
   */
  private observe(h: { ok: boolean; sessions?: number }) {
    const reconnected = h.sessions !== undefined && this.sessions !== undefined && h.sessions !== this.sessions;
    this.sessions = h.sessions;
    if (reconnected && h.ok && this.live) {
      this.log.warn({ sessions: h.sessions }, 'the bus reconnected: streams resynchronize');
      this.resyncAll();
    }
    this.setLive(h.ok);
  }

  private resyncAll() {
    for (const set of this.listeners.values()) for (const l of set) l.resync();
  }

  private setLive(live: boolean) {
    if (live === this.live) return;
    this.live = live;
    this.log.warn({ live }, live ? 'job events flow again from the bus: streams resynchronize' : 'job events from the bus stopped: streams poll the read model');
    if (live) this.resyncAll();
  }

  private dispatch(e: AnyEvent) {
    if (this.deleted.has(e.jobId)) return; // a late event of a deleted job brings nothing back
    this.remember(e);
    for (const l of this.listeners.get(e.jobId) ?? []) l.event(e);
  }

  private remember(e: AnyEvent) {
    const now = Date.now();
    const r = this.recent.get(e.jobId) ?? { events: [], at: now };
    this.recent.delete(e.jobId); // re-inserted: the map's order is least recently updated first
    r.events.push(e);
    r.at = now;
    // Progress is monotonic: only the newest few matter; every other event is kept.
    const progress = r.events.filter((x) => x.type === 'job.progress');
    if (progress.length > PROGRESS_KEPT) {
      const drop = new Set<AnyEvent>(progress.slice(0, progress.length - PROGRESS_KEPT));
      r.events = r.events.filter((x) => !drop.has(x));
    }
    this.recent.set(e.jobId, r);
    for (const [id, old] of this.recent) {
      if (this.recent.size <= JOBS_KEPT && now - old.at < KEEP_MS) break;
      this.recent.delete(id);
    }
  }

  /** Forgets a deleted job: what was heard of it, and whatever of it still arrives. */
  forget(jobId: string): void {
    this.recent.delete(jobId);
    const now = Date.now();
    this.deleted.set(jobId, now);
    for (const [id, at] of this.deleted) {
      if (this.deleted.size <= JOBS_KEPT && now - at < KEEP_MS) break;
      this.deleted.delete(id);
    }
    // Its open streams read the read model once: the job is gone there, so they end.
    for (const l of this.listeners.get(jobId) ?? []) l.resync();
  }

  /** Starts delivering a job's events to a listener; returns the function that stops it. */
  watch(jobId: string, l: StreamListener): () => void {
    const set = this.listeners.get(jobId) ?? new Set();
    set.add(l);
    this.listeners.set(jobId, set);
    return () => {
      set.delete(l);
      if (set.size === 0) this.listeners.delete(jobId);
    };
  }

  /** Open streams (metrics, tests). */
  get streams(): number {
    let n = 0;
    for (const s of this.listeners.values()) n += s.size;
    return n;
  }

  /** The job as this gateway's recent events make it, applied over `base` (the read model's document, if any). */
  latest(jobId: string, base?: Job): Job | undefined {
    let job = base;
    const events = this.recent.get(jobId)?.events ?? [];
    // Creation first, so a job this gateway saw created folds from nothing.
    for (const e of [...events].sort((a, b) => (a.type === 'job.created' ? -1 : b.type === 'job.created' ? 1 : 0))) {
      const r = project(job, e);
      if (r.outcome === 'applied' && r.job) job = r.job;
    }
    return job;
  }

  async close(): Promise<void> {
    clearInterval(this.watchdog);
    await this.sub?.close();
  }
}
