/**
 * The separator's engines (model sessions), shared by the jobs in flight a run at a time. A job's
 * pass keeps as many runs asked as there are sessions, plus one waiting: alone, it keeps every
 * session busy, and a session that frees starts the job's next chunk at once. Jobs that started
 * earlier go first (a queue of jobs finishes one by one, the later ones filling the gaps: the first
 * chunk's STFT, the stems' encoding); a free session serves a run of the quality it has loaded
 * before one that would make it switch. How many sessions pay depends on the machine (autoEngines).
 */
import type { Quality } from '@stemflow/models';
import type { ModelRunner } from './runner.js';

/** A session that may hold either graph: `quality` is the one loaded, `select` loads another. */
type PooledRunner = ModelRunner & { readonly quality?: Quality };
type Waiter = { priority: number; quality: Quality | undefined; take: (r: PooledRunner) => void; drop: (e: Error) => void; lease: object };

/** A run asked for and withdrawn before a session took it. */
export class RunWithdrawn extends Error {
  constructor() {
    super('the run was withdrawn before it started');
  }
}
/** Whether a session can serve a run without switching graphs. */
const serves = (r: PooledRunner, q: Quality | undefined) => r.quality === undefined || q === undefined || r.quality === q;

export class ModelPool {
  private readonly free: PooledRunner[];
  /** In the order asked: among equal priorities, the first is the oldest. */
  private readonly waiting: Waiter[] = [];

  constructor(readonly runners: readonly PooledRunner[]) {
    if (!runners.length) throw new Error('a model pool needs at least one session');
    this.free = [...runners];
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
   * Its `lanes` are the sessions plus one: a pass keeps one run waiting, so a session that frees
   * starts the job's next chunk at once, before a later job's and with no gap on the model's cores.
   */
  lease(priority: number): ModelRunner & { readonly lanes: number; withdraw(): void } {
    let quality: Quality | undefined;
    const pool = this;
    const lease = {};
    return {
      get device() {
        return pool.device;
      },
      lanes: this.size + 1,
      select: async (q) => {
        quality = q;
      },
      withdraw: () => pool.withdraw(lease),
      run: async (mix, spec) => {
        const runner = await pool.acquire(priority, quality, lease);
        try {
          if (quality && runner.quality !== undefined && runner.quality !== quality) await runner.select?.(quality);
          return await runner.run(mix, spec);
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

  private acquire(priority: number, quality: Quality | undefined, lease: object): Promise<PooledRunner> {
    if (this.free.length) return Promise.resolve(this.free.splice(Math.max(0, this.free.findIndex((r) => serves(r, quality))), 1)[0]!);
    return new Promise((take, drop) => this.waiting.push({ priority, quality, take, drop, lease }));
  }

  /** Fails a lease's runs that no session has taken yet (RunWithdrawn): its job stopped. */
  private withdraw(lease: object): void {
    for (const w of this.waiting.filter((x) => x.lease === lease)) {
      this.waiting.splice(this.waiting.indexOf(w), 1);
      w.drop(new RunWithdrawn());
    }
  }

  private release(runner: PooledRunner): void {
    if (!this.waiting.length) {
      this.free.push(runner);
      return;
    }
    // The earliest job's oldest run of the quality this session holds; else the earliest job's.
    const first = (ws: Waiter[]) => ws.reduce((a, b) => (b.priority < a.priority ? b : a));
    const same = this.waiting.filter((w) => serves(runner, w.quality));
    const next = first(same.length ? same : this.waiting);
    this.waiting.splice(this.waiting.indexOf(next), 1);
    next.take(runner);
  }
}
