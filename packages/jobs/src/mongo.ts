/**
 * MongoDB adapter (mongoose). Events are applied with the shared projection and written by
 * compare-and-set on each document's version, so two status replicas never overwrite each other
 * (the loser re-reads and re-applies).
 *
 * Writes are batched: while one round trip is in flight, the events that arrive meanwhile wait,
 * and then go together: one read of the documents not in the cache, each job's events applied in
 * arrival order in memory, and one unordered bulk write with one conditional replace per job. A
 * job's five progress events in a batch cost one write. Each event's promise settles only once
 * the write that holds it is acknowledged, so the bus acks nothing that is not stored.
 *
 * On MongoDB `{_id, version}` is an index lookup. FerretDB v1 (the native engine) pushes only an
 * `_id`-only filter down to SQLite, so there each conditional write scans the collection; batching
 * is what keeps the projection up with the events there (docs/benchmarks.md).
 */
import { type AnyEvent, type Job, type JobOptions, type JobStatus, unavailable } from '@stemflow/contracts';
import { LRUCache } from 'lru-cache';
import mongoose, { type Connection, type Model } from 'mongoose';
import { randomUUID } from 'node:crypto';
import { addUsage, decodeCursor, encodeCursor, optionsKey, zeroCounts, type JobStore, type ListQuery, type ListResult, type Usage } from './port.js';
import { project, type Outcome } from './projection.js';

/** version: the compare-and-set counter; write_id: which write produced this version. */
type Doc = Omit<Job, 'id'> & { _id: string; version: number; options_key: string; write_id?: string };
type Applied = { outcome: Outcome; job?: Job };
type Pending = { event: AnyEvent; tries: number; resolve: (r: Applied) => void; reject: (err: unknown) => void };
/** Events written in one round trip at most. */
const MAX_BATCH = 512;
/** Re-reads after losing a compare-and-set, before an event gives up (then the bus retries it). */
const MAX_TRIES = 50;

const jobSchema = new mongoose.Schema<Doc>(
  {
    _id: { type: String, required: true },
    version: { type: Number, required: true },
    owner: { type: String, default: null },
    status: { type: String, required: true },
    stage: { type: String, default: null },
    progress: Number,
    eta_sec: { type: Number, default: null },
    error_message: { type: String, default: null },
    error_code: { type: String, default: null },
    created_at: { type: String, required: true },
    updated_at: { type: String, required: true },
    input: { type: mongoose.Schema.Types.Mixed, required: true },
    options: { type: mongoose.Schema.Types.Mixed, required: true },
    options_key: { type: String, required: true },
    stems: { type: mongoose.Schema.Types.Mixed, default: [] },
    webhook: { type: mongoose.Schema.Types.Mixed, default: null },
    import: { type: mongoose.Schema.Types.Mixed, default: null },
    output: { type: mongoose.Schema.Types.Mixed, default: null },
    ready_sec: { type: Number, default: 0 },
    report: { type: mongoose.Schema.Types.Mixed, default: null },
    applied_events: { type: [String], default: [] },
    write_id: { type: String },
  },
  { versionKey: false, minimize: false, collection: 'jobs' },
);
jobSchema.index({ owner: 1, created_at: -1 });
jobSchema.index({ status: 1, created_at: -1 });
jobSchema.index({ 'input.sha256': 1 });
jobSchema.index({ created_at: -1 });

type Tombstone = { _id: string; deleted_at: string };
const tombstoneSchema = new mongoose.Schema<Tombstone>({ _id: { type: String, required: true }, deleted_at: { type: String, required: true } }, { versionKey: false, collection: 'deleted_jobs' });

const toDoc = (j: Job, version: number): Doc => {
  const { id, ...rest } = j;
  return { _id: id, version, options_key: optionsKey(j.options), write_id: randomUUID(), ...rest };
};
const toJob = (d: Doc): Job => {
  const { _id, version: _v, options_key: _k, write_id: _w, ...rest } = d;
  return { id: _id, ...rest } as Job;
};

/** A mongoose connection (it reconnects by itself afterwards); DEPENDENCY_UNAVAILABLE if none. */
export async function openConnection(url: string, serverSelectionTimeoutMS = 10_000): Promise<Connection> {
  const conn = mongoose.createConnection(url, { serverSelectionTimeoutMS, bufferCommands: false });
  try {
    await conn.asPromise();
  } catch (err) {
    await conn.close().catch(() => {});
    throw unavailable(`database (${(err as Error).message})`, err);
  }
  return conn;
}

export class MongoJobStore implements JobStore {
  private constructor(
    private readonly conn: Connection,
    private readonly jobs: Model<Doc>,
    private readonly tombstones: Model<Tombstone>,
  ) {}

  /** Connects (mongoose reconnects by itself afterwards) and builds the indexes. */
  static async connect(url: string, opts: { serverSelectionTimeoutMS?: number } = {}): Promise<MongoJobStore> {
    const conn = await openConnection(url, opts.serverSelectionTimeoutMS);
    const store = new MongoJobStore(conn, conn.model<Doc>('Job', jobSchema), conn.model<Tombstone>('DeletedJob', tombstoneSchema));
    await store.jobs.init();
    return store;
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const name = (err as Error).name ?? '';
      if (/Mongo(Network|ServerSelection|NotConnected|Timeout)|MongooseServerSelectionError|PoolCleared/.test(name) || /connection|ECONNREFUSED|buffering timed out|Client must be connected/i.test((err as Error).message)) {
        throw unavailable(`database (${(err as Error).message})`, err);
      }
      throw err;
    }
  }

  async create(job: Job): Promise<Job> {
    return this.guard(async () => {
      try {
        await this.jobs.collection.insertOne(toDoc(job, 1) as never);
        return job;
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
        return (await this.get(job.id))!;
      }
    });
  }

  /** Events waiting for the next batch, in arrival order. */
  private queue: Pending[] = [];
  private draining = false;
  /**
   * The documents this process last read or wrote. A stale entry costs a lost compare-and-set
   * (then a re-read), never a wrong write, so another writer (a second replica, a delete) is safe.
   */
  private readonly cache = new LRUCache<string, Doc>({ max: 5_000 });

  apply(event: AnyEvent): Promise<Applied> {
    return new Promise((resolve, reject) => {
      this.queue.push({ event, tries: 0, resolve, reject });
      if (!this.draining) {
        this.draining = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain() {
    while (this.queue.length) {
      const batch = this.queue.splice(0, MAX_BATCH);
      try {
        const again = await this.guard(() => this.writeBatch(batch));
        for (const p of again) {
          if (++p.tries >= MAX_TRIES) p.reject(new Error(`could not apply ${p.event.type} to job ${p.event.jobId}: too much contention`));
        }
        this.queue.unshift(...again.filter((p) => p.tries < MAX_TRIES));
      } catch (err) {
        // Whether any of it landed is unknown: forget what we knew, and let the bus retry.
        for (const p of batch) {
          this.cache.delete(p.event.jobId);
          p.reject(err);
        }
      }
    }
    this.draining = false;
  }

  /** One batch: read what the cache lacks, project, write; returns the events to try again. */
  private async writeBatch(batch: Pending[]): Promise<Pending[]> {
    const byJob = new Map<string, Pending[]>();
    for (const p of batch) {
      const waiting = byJob.get(p.event.jobId);
      if (waiting) waiting.push(p);
      else byJob.set(p.event.jobId, [p]);
    }
    const ids = [...byJob.keys()];
    const unread = ids.filter((id) => !this.cache.has(id));
    if (unread.length) for (const d of await this.jobs.collection.find({ _id: { $in: unread } } as never).toArray()) this.cache.set(d._id as unknown as string, d as unknown as Doc);
    const absent = ids.filter((id) => !this.cache.has(id));
    const deleted = new Set(absent.length ? (await this.tombstones.collection.find({ _id: { $in: absent } } as never, { projection: { _id: 1 } }).toArray()).map((d) => d._id as unknown as string) : []);

    const results = new Map<Pending, Applied>();
    const writes: { id: string; doc: Doc; waiting: Pending[]; op: object }[] = [];
    for (const [id, waiting] of byJob) {
      const before = this.cache.get(id);
      if (!before && deleted.has(id)) {
        for (const p of waiting) results.set(p, { outcome: 'stale' });
        continue;
      }
      let job = before ? toJob(before) : undefined;
      let changed = false;
      for (const p of waiting) {
        const r = project(job, p.event);
        results.set(p, r);
        if (r.outcome === 'applied' && r.job) [job, changed] = [r.job, true];
      }
      if (!changed || !job) continue;
      const doc = toDoc(job, (before?.version ?? 0) + 1);
      const op = before ? { replaceOne: { filter: { _id: id, version: before.version }, replacement: doc } } : { insertOne: { document: doc } };
      writes.push({ id, doc, waiting, op });
    }

    const again: Pending[] = [];
    if (writes.length) {
      const lost = await this.bulkWrite(writes);
      for (const w of writes) {
        if (lost.has(w.id)) {
          // Another writer got there first (or created the job meanwhile): read again, re-apply.
          this.cache.delete(w.id);
          again.push(...w.waiting);
          for (const p of w.waiting) results.delete(p);
        } else this.cache.set(w.id, w.doc);
      }
    }
    for (const [p, r] of results) p.resolve(r);
    return again;
  }

  /** One unordered bulk write; returns the jobs whose write did not land (a lost compare-and-set). */
  private async bulkWrite(writes: { id: string; doc: Doc; op: object }[]): Promise<Set<string>> {
    const lost = new Set<string>();
    let landed: number;
    try {
      const r = await this.jobs.collection.bulkWrite(writes.map((w) => w.op) as never, { ordered: false });
      landed = r.matchedCount + r.insertedCount;
    } catch (err) {
      if (!(err instanceof mongoose.mongo.MongoBulkWriteError)) throw err;
      const errors = [err.writeErrors].flat();
      // Only "created meanwhile" is a lost race; any other write error is a real failure.
      if (errors.some((e) => e.code !== 11000)) throw err;
      for (const e of errors) lost.add(writes[e.index]!.id);
      landed = err.result.matchedCount + err.result.insertedCount;
    }
    if (landed + lost.size === writes.length) return lost;
    // Some conditional replace matched nothing, and counts do not say which: ask the documents.
    const stored = await this.jobs.collection.find({ _id: { $in: writes.map((w) => w.id) } } as never, { projection: { _id: 1, write_id: 1 } }).toArray();
    const landedAs = new Map(stored.map((d) => [d._id as unknown as string, d.write_id as string | undefined]));
    for (const w of writes) if (landedAs.get(w.id) !== w.doc.write_id) lost.add(w.id);
    return lost;
  }

  async get(id: string) {
    return this.guard(async () => {
      const d = await this.jobs.findById(id).lean<Doc>();
      return d ? toJob(d) : undefined;
    });
  }

  async list(q: ListQuery): Promise<ListResult> {
    return this.guard(async () => {
      const filter: Record<string, unknown> = {};
      if (q.owner !== undefined) filter.owner = q.owner;
      if (q.status) filter.status = q.status;
      const c = q.cursor ? decodeCursor(q.cursor) : undefined;
      if (c) filter.$or = [{ created_at: { $lt: c.created_at } }, { created_at: c.created_at, _id: { $lt: c.id } }];
      const docs = await this.jobs.find(filter).sort({ created_at: -1, _id: -1 }).limit(q.limit + 1).lean<Doc[]>();
      const items = docs.slice(0, q.limit).map(toJob);
      return { items, nextCursor: docs.length > q.limit ? encodeCursor(items[items.length - 1]!) : null };
    });
  }

  async delete(id: string) {
    return this.guard(async () => {
      await this.tombstones.updateOne({ _id: id }, { $set: { deleted_at: new Date().toISOString() } }, { upsert: true });
      this.cache.delete(id);
      const r = await this.jobs.deleteOne({ _id: id });
      return r.deletedCount === 1;
    });
  }

  async findReusable(sha256: string, options: JobOptions, owner: string | null) {
    return this.guard(async () => {
      const d = await this.jobs.findOne({ 'input.sha256': sha256, status: 'completed', owner, options_key: optionsKey(options) }).lean<Doc>();
      return d ? toJob(d) : undefined;
    });
  }

  async createdBefore(date: Date, limit: number) {
    return this.guard(async () => {
      const docs = await this.jobs.find({ created_at: { $lt: date.toISOString() } }, { _id: 1 }).limit(limit).lean<{ _id: string }[]>();
      return docs.map((d) => d._id);
    });
  }

  async usage(owner: string | null, since: Date): Promise<Usage> {
    return this.guard(async () => {
      const rows = await this.jobs.collection.find({ owner, created_at: { $gte: since.toISOString() } }, { projection: { status: 1, input: 1 } }).toArray();
      return rows.reduce<Usage>((u, r) => addUsage(u, r as unknown as Job), { jobs: 0, active: 0, audioSec: 0 });
    });
  }

  async countByStatus() {
    return this.guard(async () => {
      const counts = zeroCounts();
      const rows = await this.jobs.aggregate<{ _id: JobStatus; n: number }>([{ $group: { _id: '$status', n: { $sum: 1 } } }]);
      for (const r of rows) if (r._id in counts) counts[r._id] = r.n;
      return counts;
    });
  }

  async health() {
    try {
      await this.conn.db!.admin().ping();
      return { ok: true, detail: 'MongoDB' };
    } catch (err) {
      return { ok: false, detail: `MongoDB: ${(err as Error).message}` };
    }
  }

  async close() {
    await this.conn.close();
  }
}
