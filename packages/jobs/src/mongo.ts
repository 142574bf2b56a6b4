/**
 * MongoDB adapter (mongoose). Each event is applied with the shared projection and written by a
 * compare-and-set on the document's version: one atomic conditional update, so two status
 * replicas never overwrite each other (the loser re-reads and re-applies).
 */
import { type AnyEvent, type Job, type JobOptions, type JobStatus, unavailable } from '@stemflow/contracts';
import mongoose, { type Connection, type Model } from 'mongoose';
import { decodeCursor, encodeCursor, optionsKey, zeroCounts, type JobStore, type ListQuery, type ListResult } from './port.js';
import { project } from './projection.js';

type Doc = Omit<Job, 'id'> & { _id: string; version: number; options_key: string };

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
    applied_events: { type: [String], default: [] },
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
  return { _id: id, version, options_key: optionsKey(j.options), ...rest };
};
const toJob = (d: Doc): Job => {
  const { _id, version: _v, options_key: _k, ...rest } = d;
  return { id: _id, ...rest } as Job;
};

export class MongoJobStore implements JobStore {
  private constructor(
    private readonly conn: Connection,
    private readonly jobs: Model<Doc>,
    private readonly tombstones: Model<Tombstone>,
  ) {}

  /** Connects (mongoose reconnects by itself afterwards) and builds the indexes. */
  static async connect(url: string, opts: { serverSelectionTimeoutMS?: number } = {}): Promise<MongoJobStore> {
    const conn = mongoose.createConnection(url, { serverSelectionTimeoutMS: opts.serverSelectionTimeoutMS ?? 10_000, bufferCommands: false });
    try {
      await conn.asPromise();
    } catch (err) {
      await conn.close().catch(() => {});
      throw unavailable(`database (${(err as Error).message})`, err);
    }
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

  /** Events of one job are applied one at a time in this process (and its CAS retries stay rare). */
  private readonly perJob = new Map<string, Promise<unknown>>();

  async apply(event: AnyEvent) {
    const prev = this.perJob.get(event.jobId) ?? Promise.resolve();
    const run = prev.then(() => this.applyNow(event));
    const tail = run.catch(() => {});
    this.perJob.set(event.jobId, tail);
    void tail.then(() => {
      if (this.perJob.get(event.jobId) === tail) this.perJob.delete(event.jobId);
    });
    return run;
  }

  private async applyNow(event: AnyEvent) {
    return this.guard(async () => {
      for (let attempt = 0; attempt < 50; attempt++) {
        const doc = await this.jobs.findById(event.jobId).lean<Doc>();
        if (!doc && (await this.tombstones.exists({ _id: event.jobId }))) return { outcome: 'stale' as const };
        const r = project(doc ? toJob(doc) : undefined, event);
        if (r.outcome !== 'applied' || !r.job) return r;
        if (!doc) {
          try {
            await this.jobs.collection.insertOne(toDoc(r.job, 1) as never);
            return r;
          } catch (err) {
            if ((err as { code?: number }).code === 11000) continue; // created meanwhile: re-apply
            throw err;
          }
        }
        const res = await this.jobs.collection.replaceOne({ _id: doc._id, version: doc.version } as never, toDoc(r.job, doc.version + 1) as never);
        if (res.matchedCount === 1) return r;
        // Another replica wrote first: read again and re-apply.
      }
      throw new Error(`could not apply ${event.type} to job ${event.jobId}: too much contention`);
    });
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
