/**
 * Job store for the one-process mode: documents in memory, every write appended to a JSON-lines
 * log under STORAGE_ROOT and replayed at start (then compacted into a fresh log, written to a
 * temp file and renamed). Survives process restarts; a single writer per root.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { AnyEvent, Job, JobOptions } from '@stemflow/contracts';
import { addUsage, decodeCursor, encodeCursor, optionsKey, zeroCounts, type JobStore, type ListQuery, type ListResult, type Usage } from './port.js';
import { project } from './projection.js';

type LogLine = { put: Job } | { del: string };

export class EmbeddedJobStore implements JobStore {
  private readonly jobs = new Map<string, Job>();
  private readonly deleted = new Set<string>();
  private log: FileHandle | undefined;
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(private readonly file: string) {}

  static async open(file: string): Promise<EmbeddedJobStore> {
    const s = new EmbeddedJobStore(file);
    mkdirSync(dirname(file), { recursive: true });
    if (existsSync(file)) {
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        let rec: LogLine;
        try {
          rec = JSON.parse(line) as LogLine;
        } catch {
          continue; // a line torn by a crash mid-write: the write was never acknowledged
        }
        if ('put' in rec) s.jobs.set(rec.put.id, rec.put);
        else {
          s.jobs.delete(rec.del);
          s.deleted.add(rec.del);
        }
      }
    }
    // Compact: one line per live job and tombstone.
    const lines = [...[...s.jobs.values()].map((j) => JSON.stringify({ put: j })), ...[...s.deleted].map((d) => JSON.stringify({ del: d }))];
    writeFileSync(`${file}.tmp`, lines.length ? `${lines.join('\n')}\n` : '');
    renameSync(`${file}.tmp`, file);
    s.log = await open(file, 'a');
    return s;
  }

  /** Writes are serialized: each resolves once its line is appended. */
  private write(rec: LogLine): Promise<void> {
    const p = this.tail.then(() => this.log!.appendFile(`${JSON.stringify(rec)}\n`));
    this.tail = p.catch(() => {});
    return p;
  }

  async create(job: Job): Promise<Job> {
    const existing = this.jobs.get(job.id);
    if (existing) return existing;
    this.jobs.set(job.id, job);
    await this.write({ put: job });
    return job;
  }

  async apply(event: AnyEvent) {
    if (this.deleted.has(event.jobId)) return { outcome: 'stale' as const };
    const r = project(this.jobs.get(event.jobId), event);
    if (r.outcome === 'applied' && r.job) {
      this.jobs.set(r.job.id, r.job);
      await this.write({ put: r.job });
    }
    return r;
  }

  async get(id: string) {
    return this.jobs.get(id);
  }

  async list(q: ListQuery): Promise<ListResult> {
    const c = q.cursor ? decodeCursor(q.cursor) : undefined;
    const all = [...this.jobs.values()]
      .filter((j) => (q.owner === undefined || j.owner === q.owner) && (!q.status || j.status === q.status))
      .sort((a, b) => (a.created_at === b.created_at ? b.id.localeCompare(a.id) : b.created_at.localeCompare(a.created_at)))
      .filter((j) => !c || j.created_at < c.created_at || (j.created_at === c.created_at && j.id < c.id));
    const items = all.slice(0, q.limit);
    return { items, nextCursor: all.length > q.limit ? encodeCursor(items[items.length - 1]!) : null };
  }

  async delete(id: string) {
    const had = this.jobs.delete(id);
    this.deleted.add(id);
    await this.write({ del: id });
    return had;
  }

  async findReusable(sha256: string, options: JobOptions, owner: string | null) {
    const key = optionsKey(options);
    return [...this.jobs.values()].find(
      (j) => j.status === 'completed' && j.input.sha256 === sha256 && j.owner === owner && optionsKey(j.options) === key,
    );
  }

  async createdBefore(date: Date, limit: number) {
    const iso = date.toISOString();
    return [...this.jobs.values()].filter((j) => j.created_at < iso).slice(0, limit).map((j) => j.id);
  }

  async usage(owner: string | null, since: Date): Promise<Usage> {
    const from = since.toISOString();
    let u: Usage = { jobs: 0, active: 0, audioSec: 0 };
    for (const j of this.jobs.values()) if (j.owner === owner && j.created_at >= from) u = addUsage(u, j);
    return u;
  }

  async countByStatus() {
    const counts = zeroCounts();
    for (const j of this.jobs.values()) counts[j.status]++;
    return counts;
  }

  async health() {
    return { ok: this.log !== undefined, detail: `embedded ${this.file}` };
  }

  async close() {
    await this.tail;
    await this.log?.close();
    this.log = undefined;
  }
}
