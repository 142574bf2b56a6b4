/**
 * pnpm bench bus — publish→handler latency (p50/p99) and confirmed publishes per second, RabbitMQ on
 * loopback and the in-process bus side by side in one run. Target: RabbitMQ p99 ≤ 20 ms.
 */
import { performance } from 'node:perf_hooks';
import { InMemoryBus, newEvent, RabbitBus, type EventBus } from '@stemflow/bus';
import type { QueueSpec } from '@stemflow/contracts';
import { v7 as uuidv7 } from 'uuid';
import { withChannel, deleteQueues } from '../support/rabbit.js';
import { engineEnv } from '../support/env.js';

const spec = (): QueueSpec => ({
  name: `bench.${uuidv7()}`,
  bindings: ['job.progress'],
  prefetch: 64,
  retry: { maxAttempts: 3, delaysMs: [100] },
  stage: 'bench',
  failJobOnGiveUp: false,
  description: 'bench',
});

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function measure(name: string, bus: EventBus & { declare(s: QueueSpec): Promise<void> | void }, q: QueueSpec) {
  await bus.declare(q);
  const jobId = uuidv7();
  const started = new Map<string, number>();
  const lat: number[] = [];
  let received = 0;
  let notify: (() => void) | undefined;
  await bus.subscribe(q, {
    'job.progress': async (e) => {
      const t = started.get(e.id);
      if (t !== undefined) lat.push(performance.now() - t);
      received++;
      notify?.();
    },
  });
  const waitFor = (n: number) => new Promise<void>((r) => { notify = () => received >= n && r(); notify(); });

  // Latency: one event at a time, publish start → handler entry.
  const N = 2000, WARM = 200;
  for (let i = 0; i < N + WARM; i++) {
    const e = newEvent('job.progress', jobId, { stage: 'separating', progress: 0.5 });
    if (i >= WARM) started.set(e.id, performance.now());
    await bus.publish(e);
    await waitFor(i + 1);
  }
  // Throughput: 64 publishes in flight, each resolved on its confirm.
  const M = 5000;
  const before = received;
  const t0 = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    while (next++ < M) await bus.publish(newEvent('job.progress', jobId, { stage: 'separating', progress: 0.5 }));
  }));
  const pubSec = (performance.now() - t0) / 1000;
  await waitFor(before + M);
  const row = { p50: pct(lat, 50), p99: pct(lat, 99), perSec: M / pubSec };
  console.log(`${name.padEnd(12)} latency p50 ${row.p50.toFixed(2)} ms  p99 ${row.p99.toFixed(2)} ms   confirmed publishes ${row.perSec.toFixed(0)}/s`);
  return row;
}

const mem = new InMemoryBus({ queues: [] });
const m = await measure('in-process', mem, spec());
await mem.close();

const q = spec();
const rabbit = await RabbitBus.connect({ url: engineEnv('AMQP_URL'), queues: [] });
const r = await measure('RabbitMQ', rabbit, q);
await rabbit.close();
await withChannel((ch) => deleteQueues(ch, q));

console.log(`\nRabbitMQ p99 ${r.p99.toFixed(2)} ms (target ≤ 20 ms: ${r.p99 <= 20 ? 'met' : 'MISSED'}); RabbitMQ/in-process p99 ratio ${(r.p99 / m.p99).toFixed(1)}x`);
