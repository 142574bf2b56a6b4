/**
 * The separator's engines (model sessions), shared by the jobs in flight a run at a time. A job's
 * pass keeps as many runs asked as the sessions take at once (one each; two for a lone session
 * whose worker queues the next), plus one waiting: alone, it keeps every session busy, and a
 * session that frees starts the job's next chunk at once. Jobs that started
 * earlier go first (a queue of jobs finishes one by one, the later ones filling the gaps: the first
 * chunk's STFT, the stems' encoding); a free session serves a run of the quality it has loaded
 * before one that would make it switch. How many sessions pay depends on the machine (autoEngines).
 */
import type { Quality } from '@stemflow/models';
import { RunWithdrawn, type ModelRunner } from './runner.js';

/** A session that may hold either graph: `quality` is the one loaded, `select` loads another. */
type PooledRunner = ModelRunner & { readonly quality?: Quality };
type Waiter = { priority: number; quality: Quality | undefined; take: (r: PooledRunner) => void; drop: (e: Error) => void; lease: object };
/**
 * A session and the runs it was given and has not returned: one computing, and — a pool of one
 * session that queues — one more waiting in its thread behind it, once the first is posted
 * (`posted`: the quality it computes; a run of another quality waits here, in the pool).
 */
type Session = { runner: PooledRunner; given: number; posted?: { quality: Quality | undefined } };

/** Whether a run of quality `q` goes on a graph `held` (a session's, or the run's it computes) without a switch. */
const sameGraph = (held: Quality | undefined, q: Quality | undefined) => held === undefined || q === undefined || held === q;

export class ModelPool {
  private readonly sessions: Session[];
  /** In the order asked: among equal priorities, the first is the oldest. */
  private readonly waiting: Waiter[] = [];
  /**
   * Runs a session is given at once. One, where there are several sessions: a run committed to a
   * busy one early could wait behind it while another frees. Two for a pool of one session that
   * queues: nothing else could take the run sooner, and the session starts it the moment the
   * current returns, with no round trip through this thread between the two.
   */
  private readonly depth: number;

  constructor(readonly runners: readonly PooledRunner[]) {
    if (!runners.length) throw new Error('a model pool needs at least one session');
    this.sessions = runners.map((runner) => ({ runner, given: 0 }));
    this.depth = runners.length === 1 && runners[0]!.queues ? 2 : 1;
  }

  /** Sessions: how many runs can be computed at once. */
  get size(): number {
    return this.runners.length;
  }

  get device(): 'cpu' | 'cuda' {
    return this.runners[0]!.device;
  }

  /** Runs asked for and waiting for a session. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * A job's view of the pool: a runner whose runs take the next free session (switched to the
   * job's quality where it holds the other), ahead of the runs of jobs with a larger `priority`.
   * Its `lanes` are the runs the sessions take at once plus one: a pass keeps one run waiting, so a
   * session that frees starts the job's next chunk at once, before a later job's and with no gap on
   * the model's cores.
   */
  lease(priority: number): ModelRunner & { readonly lanes: number; withdraw(): void } {
    let quality: Quality | undefined;
    const pool = this;
    const lease = {};
    // Aborted by withdraw: the lease's runs queued in a session's thread and not started.
    let posted = new AbortController();
    return {
      get device() {
        return pool.device;
      },
      lanes: this.size * this.depth + 1,
      select: async (q) => {
        quality = q;
      },
      withdraw: () => {
        pool.withdraw(lease);
        posted.abort();
        posted = new AbortController();
      },
      run: async (mix, spec) => {
        const signal = posted.signal;
        const runner = await pool.acquire(priority, quality, lease);
        try {
          if (quality && runner.quality !== undefined && runner.quality !== quality) await runner.select?.(quality);
          const out = runner.run(mix, spec, signal);
          pool.posted(runner);
          return await out;
        } finally {
          pool.release(runner);
        }
      },
      // The sessions are the pool's: a job's end closes none of them.
      close: async () => {},
    };
  }

  close(): Promise<void> {
    return Promise.all(this.runners.map((r) => r.close())).then(() => {});
  }

  private session(runner: PooledRunner): Session {
    return this.sessions.find((s) => s.runner === runner)!;
  }

  /** Whether a session computing a run takes one of quality `q` behind it (in its thread). */
  private queuesBehind(s: Session, q: Quality | undefined): boolean {
    return s.given < this.depth && s.posted !== undefined && sameGraph(s.posted.quality, q);
  }

  /** A free session (one holding this quality first), else one that takes a run of this quality behind its own. */
  private pick(q: Quality | undefined): Session | undefined {
    const free = this.sessions.filter((s) => s.given === 0);
    if (free.length) return free.find((s) => sameGraph(s.runner.quality, q)) ?? free[0];
    return this.sessions.find((s) => this.queuesBehind(s, q));
  }

  private acquire(priority: number, quality: Quality | undefined, lease: object): Promise<PooledRunner> {
    const s = this.pick(quality);
    if (!s) return new Promise((take, drop) => this.waiting.push({ priority, quality, take, drop, lease }));
    s.given++;
    return Promise.resolve(s.runner);
  }

  /** Fails a lease's runs that no session has taken yet (RunWithdrawn): its job stopped. */
  private withdraw(lease: object): void {
    for (const w of this.waiting.filter((x) => x.lease === lease)) {
      this.waiting.splice(this.waiting.indexOf(w), 1);
      w.drop(new RunWithdrawn());
    }
  }

  /** A session's run is in its thread now, on the graph it holds: a run of that graph may queue behind it. */
  private posted(runner: PooledRunner): void {
    this.session(runner).posted = { quality: runner.quality };
    this.dispatch();
  }

  private release(runner: PooledRunner): void {
    const s = this.session(runner);
    s.given--;
    if (s.given === 0) s.posted = undefined;
    this.dispatch();
  }

  /**
   * Hands waiting runs to sessions that can take them: a free session the earliest job's oldest
   * run of the quality it holds, else the earliest job's (it switches); a session computing, the
   * earliest job's run of its quality to queue behind.
   */
  private dispatch(): void {
    const first = (ws: Waiter[]) => ws.reduce((a, b) => (b.priority < a.priority ? b : a));
    while (this.waiting.length) {
      const free = this.sessions.find((s) => s.given === 0);
      const s = free ?? this.sessions.find((x) => x.given < this.depth && x.posted);
      if (!s) return;
      const same = this.waiting.filter((w) => (free ? sameGraph(s.runner.quality, w.quality) : this.queuesBehind(s, w.quality)));
      if (!free && !same.length) return;
      const next = first(same.length ? same : this.waiting);
      this.waiting.splice(this.waiting.indexOf(next), 1);
      s.given++;
      next.take(s.runner);
    }
  }
}
