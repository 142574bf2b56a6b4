/**
 * What the gateways of one deployment must agree on besides the jobs: leases (an idempotency key
 * taken by a request, a concurrency slot held by a job) and short-lived counters (requests per
 * second). Kept in the database, so the limits hold however many gateways run; each operation is
 * one atomic write (insert-if-absent, compare-and-set on a token, upsert-increment).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Connection } from 'mongoose';
import { openConnection } from './mongo.js';
import { unavailable } from '@stemflow/contracts';

export type Lease = {
  key: string;
  /** Generation: each change of holder writes the next one; the highest is the holder. */
  gen: number;
  /** Who holds it. */
  token: string;
  value: Record<string, unknown>;
  expiresAt: Date;
};

/**
 * Built only on insert-if-absent (a unique _id), the one write FerretDB v1 also does atomically —
 * its conditional updates are a read then a write, so two gateways could both "win" one (measured:
 * 2-6 winners out of 6). A lease changes holder by inserting its next generation; a counter hands
 * out numbered tickets.
 */
export interface Ledger {
  /** The key's newest generation (its holder, or a release), if any. */
  current(key: string): Promise<Lease | undefined>;
  /** Writes generation `lease.gen` unless it exists: of all writers of one generation, one gets true. */
  take(lease: Lease): Promise<boolean>;
  /** The next of `limit` numbered tickets of a key (1-based), or undefined when all are taken. */
  ticket(key: string, limit: number, expiresAt: Date): Promise<number | undefined>;
  /** Forgets expired leases (superseded generations expire an hour after) and tickets. */
  sweep(now?: Date): Promise<number>;
  close(): Promise<void>;
}

const isLive = (l: Lease, now: Date) => !l.value.released && l.expiresAt > now;

/**
 * Takes `key` for `token` when it is free (absent, released, expired, or `isFree(holder)` says its
 * holder is done); otherwise returns the holder. Exactly one of any number of concurrent callers
 * takes a free key.
 */
export async function acquire(
  ledger: Ledger,
  want: Omit<Lease, 'gen'>,
  isFree: (holder: Lease) => Promise<boolean> = async () => false,
  now = new Date(),
): Promise<{ acquired: true } | { acquired: false; holder: Lease }> {
  for (let i = 0; i < 8; i++) {
    const cur = await ledger.current(want.key);
    if (cur && isLive(cur, now) && !(await isFree(cur))) return { acquired: false, holder: cur };
    const gen = (cur?.gen ?? -1) + 1;
    if (await ledger.take({ ...want, gen })) {
      // A writer that read long ago may have filled a swept gap below the newest: the newest wins.
      const after = await ledger.current(want.key);
      if (after?.gen === gen) return { acquired: true };
    }
  }
  const holder = await ledger.current(want.key);
  if (holder) return { acquired: false, holder };
  throw unavailable('the ledger (contended)');
}

/** Gives the key up if `token` still holds it (the next generation says released). */
export async function release(ledger: Ledger, key: string, token: string): Promise<void> {
  const cur = await ledger.current(key);
  if (!cur || cur.token !== token || cur.value.released) return;
  await ledger.take({ key, gen: cur.gen + 1, token, value: { released: true }, expiresAt: new Date(Date.now() + SUPERSEDED_MS) });
}

/** How long a superseded generation is kept (it is never read once a newer one exists). */
const SUPERSEDED_MS = 3600_000;

type LeaseDoc = { _id: string; key: string; gen: number; token: string; value: Record<string, unknown>; expires_at: Date };
type TicketDoc = { _id: string; key: string; expires_at: Date };

const fromDoc = (d: LeaseDoc): Lease => ({ key: d.key, gen: d.gen, token: d.token, value: d.value, expiresAt: new Date(d.expires_at) });
const isDuplicate = (err: unknown) => (err as { code?: number }).code === 11000;

export class MongoLedger implements Ledger {
  private constructor(private readonly conn: Connection) {}

  static async connect(url: string): Promise<MongoLedger> {
    const l = new MongoLedger(await openConnection(url));
    await l.guard(() => l.leases.createIndex({ key: 1, gen: -1 }));
    await l.guard(() => l.tickets.createIndex({ key: 1 }));
    return l;
  }

  private get leases() {
    return this.conn.db!.collection<LeaseDoc>('ledger_leases');
  }
  private get tickets() {
    return this.conn.db!.collection<TicketDoc>('ledger_tickets');
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isDuplicate(err)) throw err;
      throw unavailable(`database (${(err as Error).message})`, err);
    }
  }

  async current(key: string): Promise<Lease | undefined> {
    const d = await this.guard(() => this.leases.find({ key }).sort({ gen: -1 }).limit(1).next());
    return d ? fromDoc(d) : undefined;
  }

  async take(l: Lease): Promise<boolean> {
    try {
      await this.guard(() => this.leases.insertOne({ _id: `${l.key}#${l.gen}`, key: l.key, gen: l.gen, token: l.token, value: l.value, expires_at: l.expiresAt }));
    } catch (err) {
      if (isDuplicate(err)) return false;
      throw err;
    }
    // The generations below are superseded: kept an hour (a cleanup hint, not a decision).
    await this.leases.updateMany({ key: l.key, gen: { $lt: l.gen } }, { $set: { expires_at: new Date(Date.now() + SUPERSEDED_MS) } }).catch(() => {});
    return true;
  }

  async ticket(key: string, limit: number, expiresAt: Date): Promise<number | undefined> {
    let n = (await this.guard(() => this.tickets.countDocuments({ key }))) + 1;
    for (; n <= limit; n++) {
      try {
        await this.guard(() => this.tickets.insertOne({ _id: `${key}#${n}`, key, expires_at: expiresAt }));
        return n;
      } catch (err) {
        if (!isDuplicate(err)) throw err;
      }
    }
    return undefined;
  }

  async sweep(now = new Date()): Promise<number> {
    const a = await this.guard(() => this.leases.deleteMany({ expires_at: { $lt: now } }));
    const b = await this.guard(() => this.tickets.deleteMany({ expires_at: { $lt: now } }));
    return a.deletedCount + b.deletedCount;
  }

  async close(): Promise<void> {
    await this.conn.close();
  }
}

/**
 * The one-process ledger: leases in memory and in a JSON file under STORAGE_ROOT (written to a
 * temp file and renamed on every change, so an idempotency key outlives a restart); tickets in
 * memory only (they live a second).
 */
export class EmbeddedLedger implements Ledger {
  private readonly leases = new Map<string, Lease>();
  private readonly tickets = new Map<string, { n: number; expiresAt: Date }>();

  private constructor(private readonly file: string | undefined) {}

  static open(file?: string): EmbeddedLedger {
    const l = new EmbeddedLedger(file);
    if (file && existsSync(file)) {
      try {
        for (const x of JSON.parse(readFileSync(file, 'utf8')) as (Omit<Lease, 'expiresAt'> & { expiresAt: string })[]) l.leases.set(x.key, { ...x, expiresAt: new Date(x.expiresAt) });
      } catch {
        // Written by rename, never torn; an unreadable file (edited by hand) starts the ledger afresh.
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

  async current(key: string): Promise<Lease | undefined> {
    return this.leases.get(key);
  }

  async take(l: Lease): Promise<boolean> {
    const cur = this.leases.get(l.key);
    if (cur && cur.gen >= l.gen) return false;
    this.leases.set(l.key, l);
    this.save();
    return true;
  }

  async ticket(key: string, limit: number, expiresAt: Date): Promise<number | undefined> {
    let t = this.tickets.get(key);
    if (!t || t.expiresAt < new Date()) this.tickets.set(key, (t = { n: 0, expiresAt }));
    if (t.n >= limit) return undefined;
    return ++t.n;
  }

  async sweep(now = new Date()): Promise<number> {
    let n = 0;
    for (const [k, t] of this.tickets) if (t.expiresAt < now && this.tickets.delete(k)) n++;
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
