/**
 * The broker restarts while a publisher sends 1,000 events: every publish that resolved was
 * confirmed and arrives; publishes made while it was down wait for it instead of failing.
 */
import { newEvent } from '@stemflow/bus';
import type { QueueSpec } from '@stemflow/contracts';
import { v7 as uuidv7 } from 'uuid';
import { expect, it } from 'vitest';
import { engine } from '../support/engines.js';
import { eventually } from '../support/env.js';
import { rabbitHarness } from '../support/rabbit.js';

it('loses no confirmed event across a RabbitMQ restart', { timeout: 240_000 }, async () => {
  const q: QueueSpec = {
    name: `test.restart.${uuidv7()}`,
    bindings: ['job.progress'],
    prefetch: 100,
    retry: { maxAttempts: 3, delaysMs: [100] },
    stage: 'testing',
    failJobOnGiveUp: false,
    description: 'test',
  };
  const h = await rabbitHarness({ publishTimeoutMs: 120_000 });
  await h.declare(q);
  try {
    const jobId = uuidv7();
    const confirmed = new Set<string>();
    const rejected: string[] = [];
    let restart: Promise<void> | undefined;
    let next = 0;
    const N = 1000;
    const worker = async () => {
      while (next < N) {
        const i = next++;
        const e = newEvent('job.progress', jobId, { stage: 'separating', progress: i / N });
        try {
          await h.bus.publish(e);
          confirmed.add(e.id);
        } catch {
          rejected.push(e.id);
        }
        if (confirmed.size >= 200 && !restart) restart = engine('restart', 'rabbitmq');
        // Paced (about 200/s) so that publishing spans the broker's stop, downtime and start.
        if (restart) await new Promise((r) => setTimeout(r, 40));
      }
    };
    const t0 = Date.now();
    await Promise.all(Array.from({ length: 8 }, worker));
    await restart;
    const health = await h.bus.health();
    expect(health.ok).toBe(true);
    console.info(`1000 publishes across a broker restart took ${Date.now() - t0} ms`);
    expect(rejected).toEqual([]);
    expect(confirmed.size).toBe(N);

    const arrived = new Set<string>();
    await h.bus.subscribe(q, { 'job.progress': async (e) => void arrived.add(e.id) });
    await eventually(() => [...confirmed].every((id) => arrived.has(id)), { timeoutMs: 60_000, what: 'every confirmed event' });
    expect(arrived.size).toBe(N);
  } finally {
    await h.close();
  }
});
