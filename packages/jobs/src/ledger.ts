/**
 * What the gateways of one deployment must agree on besides the jobs: leases (an idempotency key
 * taken by a request, a concurrency slot held by a job) and short-lived counters (requests per
 * second). Kept in the database, so the limits hold however many gateways run; each operation is
 * one atomic write (insert-if-absent, compare-and-set on a token, upsert-increment).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import mongoose, { type Connection } from 'mongoose';
import { unavailable } from '@stemflow/contracts';

export type Lease = {
  key: string;
  /** Who holds it: compare-and-set works on this. */
  token: string;
  value: Record<string, unknown>;
  expiresAt: Date;
};

export interface Ledger {
  /** Takes `key` unless an unexpired lease holds it; an expired holder is replaced. */
  acquire(lease: Lease, now?: Date): Promise<{ acquired: true } | { acquired: false; holder: Lease }>;
  /** Replaces the lease `token` holds (compare-and-set); false when someone else changed it first. */
  replace(key: string, token: string, next: Lease): Promise<boolean>;
  /** Removes the lease if `token` still holds it. */
  release(key: string, token: string): Promise<void>;
  get(key: string): Promise<Lease | undefined>;
  /** Adds one to a counter that is forgotten after `expiresAt`; returns the count after. */
  increment(key: string, expiresAt: Date): Promise<number>;
  /** Forgets expired leases and counters; returns how many. */
  sweep(now?: Date): Promise<number>;
  close(): Promise<void>;
}

type LeaseDoc = { _id: string; token: string; value: Record<string, unknown>; expires_at: Date };
type CounterDoc = { _id: string; n: number; expires_at: Date };

const fromDoc = (d: LeaseDoc): Lease => ({ key: d._id, token: d.token, value: d.value, expiresAt: new Date(d.expires_at) });

export class MongoLedger implements Ledger {
  private constructor(private readonly conn: Connection) {}

  static async connect(url: string): Promise<MongoLedger> {
    const conn = mongoose.createConnection(url, { serverSelectionTimeoutMS: 10_000, bufferCommands: false });
    try {
      await conn.asPromise();
    } catch (err) {
      await conn.close().catch(() => {});
      throw unavailable(`database (${(err as Error).message})`, err);
    }
    return new MongoLedger(conn);
  }

  private get leases() {
    return this.conn.db!.collection<LeaseDoc>('ledger_leases');
  }
  private get counters() {
    return this.conn.db!.collection<CounterDoc>('ledger_counters');
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if ((err as { code?: number }).code === 11000) throw err;
      throw unavailable(`database (${(err as Error).message})`, err);
    }
  }

  async acquire(lease: Lease, now = new Date()): Promise<{ acquired: true } | { acquired: false; holder: Lease }> {
    for (let i = 0; i < 5; i++) {
      try {
        await this.guard(() => this.leases.insertOne({ _id: lease.key, token: lease.token, value: lease.value, expires_at: lease.expiresAt }));
        return { acquired: true };
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
      }
      const holder = await this.get(lease.key);
      if (!holder) continue; // released meanwhile: try the insert again
      if (holder.expiresAt > now) return { acquired: false, holder };
      if (await this.replace(lease.key, holder.token, lease)) return { acquired: true };
    }
    const holder = await this.get(lease.key);
    if (holder) return { acquired: false, holder };
    throw unavailable('the ledger (contended)');
  }

  async replace(key: string, token: string, next: Lease): Promise<boolean> {
    const r = await this.guard(() => this.leases.updateOne({ _id: key, token }, { $set: { token: next.token, value: next.value, expires_at: next.expiresAt } }));
    return r.modifiedCount === 1;
  }

  async release(key: string, token: string): Promise<void> {
    await this.guard(() => this.leases.deleteOne({ _id: key, token }));
  }

  async get(key: string): Promise<Lease | undefined> {
    const d = await this.guard(() => this.leases.findOne({ _id: key }));
    return d ? fromDoc(d) : undefined;
  }

  async increment(key: string, expiresAt: Date): Promise<number> {
    const d = await this.guard(() => this.counters.findOneAndUpdate({ _id: key }, { $inc: { n: 1 }, $setOnInsert: { expires_at: expiresAt } }, { upsert: true, returnDocument: 'after' }));
    return d?.n ?? 1;
  }

  async sweep(now = new Date()): Promise<number> {
    const a = await this.guard(() => this.leases.deleteMany({ expires_at: { $lt: now } }));
    const b = await this.guard(() => this.counters.deleteMany({ expires_at: { $lt: now } }));
    return a.deletedCount + b.deletedCount;
  }

  async close(): Promise<void> {
    await this.conn.close();
  }
}

/**
 * The one-process ledger: leases in memory and in a JSON file under STORAGE_ROOT (written to a
 * temp file and renamed on every change, so an idempotency key outlives a restart); counters in
 * memory only (they live a second).
 */
export class EmbeddedLedger implements Ledger {
  private readonly leases = new Map<string, Lease>();
  private readonly counters = new Map<string, { n: number; expiresAt: Date }>();

  private constructor(private readonly file: string | undefined) {}

  static open(file?: string): EmbeddedLedger {
    const l = new EmbeddedLedger(file);
    if (file && existsSync(file)) {
      try {
        for (const x of JSON.parse(readFileSync(file, 'utf8')) as (Omit<Lease, 'expiresAt'> & { expiresAt: string })[]) l.leases.set(x.key, { ...x, expiresAt: new Date(x.expiresAt) });
      } catch {
        // A file torn by a crash between write and rename cannot be: the rename is atomic.
      }
    }
    return l;
  }

  private save() {
    if (!this.file) return;
    mkdirSync(dirname(this.file), { recursive: true });
    writeFileSync(`${this.file}.tmp`, JSON.stringify([...this.leases.values()]));
    renameSync(`${this.file}.tmp`, this.file);
  }

  async acquire(lease: Lease, now = new Date()): Promise<{ acquired: true } | { acquired: false; holder: Lease }> {
    const holder = this.leases.get(lease.key);
    if (holder && holder.expiresAt > now) return { acquired: false, holder };
    this.leases.set(lease.key, lease);
    this.save();
    return { acquired: true };
  }

  async replace(key: string, token: string, next: Lease): Promise<boolean> {
    if (this.leases.get(key)?.token !== token) return false;
    this.leases.set(key, { ...next, key });
    this.save();
    return true;
  }

  async release(key: string, token: string): Promise<void> {
    if (this.leases.get(key)?.token !== token) return;
    this.leases.delete(key);
    this.save();
  }

  async get(key: string): Promise<Lease | undefined> {
    return this.leases.get(key);
  }

  async increment(key: string, expiresAt: Date): Promise<number> {
    const c = this.counters.get(key);
    if (c && c.expiresAt > new Date()) {
      c.n++;
      return c.n;
    }
    this.counters.set(key, { n: 1, expiresAt });
    return 1;
  }

  async sweep(now = new Date()): Promise<number> {
    let n = 0;
    for (const [k, c] of this.counters) if (c.expiresAt < now && this.counters.delete(k)) n++;
    let leases = 0;
    for (const [k, l] of this.leases) if (l.expiresAt < now && this.leases.delete(k)) leases++;
    if (leases) this.save();
    return n + leases;
  }

  async close(): Promise<void> {}
}

/** MongoDB when DATABASE_URL is set, the embedded ledger under STORAGE_ROOT otherwise. */
export const createLedger = async (c: { DATABASE_URL?: string | undefined; STORAGE_ROOT: string }): Promise<Ledger> =>
  c.DATABASE_URL ? MongoLedger.connect(c.DATABASE_URL) : EmbeddedLedger.open(join(c.STORAGE_ROOT, 'ledger.json'));
