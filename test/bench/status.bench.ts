/**
 * pnpm bench status — projection lag (event published → read-model document updated) at a steady
 * 200 events/s, on RabbitMQ and FerretDB. Target: p99 ≤ 50 ms. Then, side by side on the same
 * collection, what one conditional write (the job store's compare-and-set) costs the engine
 * against a write by `_id` alone: FerretDB v1 pushes only an `_id`-only filter down to SQLite.
 */
import { performance } from 'node:perf_hooks';
import { newEvent } from '@stemflow/bus';
import type { AnyEvent, QueueSpec } from '@stemflow/contracts';
import { QUEUES } from '@stemflow/contracts';
import { jobFromCreated, MongoJobStore } from '@stemflow/jobs';
import { FsBlobStore } from '@stemflow/storage';
import { createLogger } from '@stemflow/telemetry';
import { startStatus } from '@stemflow/status';
import { RabbitBus } from '@stemflow/bus';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mongoose from 'mongoose';
import { v7 as uuidv7 } from 'uuid';
import { engineEnv } from '../support/env.js';
import { deleteQueues, withChannel } from '../support/rabbit.js';

const RATE = 200, SECONDS = 15;
const queue: QueueSpec = { ...QUEUES.status, name: `bench.status.${uuidv7()}`, prefetch: Number(process.env.PF ?? QUEUES.status.prefetch) };
const db = engineEnv('DATABASE_URL').replace(/\/[^/]*$/, `/bench_status_${Date.now()}`);
const jobs = await MongoJobStore.connect(db);
const published = new Map<string, number>();
const lag: number[] = [];
// Times each write as it lands: the projection's own apply, observed.
const timed = new Proxy(jobs, {
  get(target, prop, recv) {
    if (prop !== 'apply') return Reflect.get(target, prop, recv);
    return async (e: AnyEvent) => {
      const r = await target.apply(e);
      const t = published.get(e.id);
      if (t !== undefined && r.outcome === 'applied') lag.push(performance.now() - t);
      return r;
    };
  },
});
const bus = await RabbitBus.connect({ url: engineEnv('AMQP_URL'), queues: [queue] });
const svc = await startStatus({ bus, jobs: timed, blobs: new FsBlobStore(mkdtempSync(join(tmpdir(), 'b-'))) }, createLogger('status', 'silent'), { queue });

const ids = Array.from({ length: 50 }, () => uuidv7());
for (const id of ids) {
  const c = newEvent('job.created', id, { input: { key: 'k', filename: 'a.wav', size: 1, content_type: 'audio/wav', sha256: 'a'.repeat(64) }, options: { stems: ['vocals'], format: 'wav16', shifts: 1, overlap: 0.25, clip: 'rescale', sample_rate: 'input', residual: false, start: 0 }, owner: null });
  await jobs.create(jobFromCreated(c));
}
const total = RATE * SECONDS;
const t0 = performance.now();
for (let i = 0; i < total; i++) {
  const due = t0 + (i * 1000) / RATE;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const e = newEvent('job.progress', ids[i % ids.length]!, { stage: 'separating', progress: Math.min(1, (i + 1) / total) });
  published.set(e.id, performance.now());
  void bus.publish(e);
}
const deadline = Date.now() + 30_000;
while (lag.length < total && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
lag.sort((a, b) => a - b);
const q = (p: number) => lag[Math.min(lag.length - 1, Math.floor(p * lag.length))]!;
console.log(`status projection on RabbitMQ + FerretDB at ${RATE} events/s for ${SECONDS} s: ${lag.length}/${total} applied`);
console.log(`lag p50 ${q(0.5).toFixed(1)} ms   p99 ${q(0.99).toFixed(1)} ms   max ${lag.at(-1)!.toFixed(1)} ms   (target p99 ≤ 50 ms: ${q(0.99) <= 50 ? 'met' : 'MISSED'})`);

// The engine's part: 5 bulks of 50 replaces, conditional on the version or by _id alone.
const raw = await mongoose.createConnection(db).asPromise();
const docs = raw.db!.collection<{ _id: string; version: number }>('jobs');
const timeBulks = async (conditional: boolean) => {
  const t = performance.now();
  for (let r = 0; r < 5; r++) {
    const current = await docs.find({}).toArray();
    await docs.bulkWrite(current.map((d) => ({ replaceOne: { filter: conditional ? { _id: d._id, version: d.version } : { _id: d._id }, replacement: { ...d, version: d.version + 1 } } })), { ordered: false });
  }
  return (performance.now() - t) / (5 * ids.length);
};
const byId = await timeBulks(false);
const cas = await timeBulks(true);
console.log(`one write, in bulks of ${ids.length}: by _id ${byId.toFixed(2)} ms, conditional on the version ${cas.toFixed(2)} ms (${(cas / byId).toFixed(1)}×)`);
await raw.close();
await svc.stop();
await bus.close();
await jobs.close();
await withChannel((ch) => deleteQueues(ch, queue));
