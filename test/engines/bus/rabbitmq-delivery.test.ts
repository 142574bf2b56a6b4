import { spawn } from 'node:child_process';
import { newEvent } from '@stemflow/bus';
import { MAX_DELIVERIES, type EventOf, type QueueSpec } from '@stemflow/contracts';
import { v7 as uuidv7 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { engineEnv, eventually } from '../../support/env.js';
import { rabbitHarness } from '../../support/rabbit.js';

const spec = (name: string): QueueSpec => ({
  name: `test.${name}.${uuidv7()}`,
  bindings: ['job.created'],
  prefetch: 1,
  retry: { maxAttempts: 3, delaysMs: [100] },
  stage: 'testing',
  failJobOnGiveUp: true,
  description: 'test',
});

export const createdEvent = (jobId: string): EventOf<'job.created'> =>
  newEvent('job.created', jobId, {
    input: { key: `jobs/${jobId}/input/a.wav`, filename: 'a.wav', size: 10, content_type: 'audio/wav', sha256: 'b'.repeat(64) },
    options: { stems: ['vocals'], format: 'wav16', shifts: 1, overlap: 0.25, clip: 'rescale', sample_rate: 'input', residual: false, start: 0 },
    owner: null,
  });

async function holdAndKill(q: QueueSpec, eventId: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/hold-consumer.ts'], {
    env: { ...process.env, AMQP_URL: engineEnv('AMQP_URL'), SPEC: JSON.stringify(q), LOG_LEVEL: 'silent' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await eventually(() => out.includes(`HOLDING ${eventId}`), { timeoutMs: 30_000, what: 'the child to take the message' });
  const exited = new Promise((r) => child.on('exit', r));
  child.kill('SIGKILL');
  await exited;
}

describe('RabbitMQ delivery guarantees', () => {
  it('redelivers a message whose consumer was SIGKILLed before ack; an idempotent handler applies it once', async () => {
    const h = await rabbitHarness();
    const q = spec('kill');
    await h.declare(q);
    try {
      const jobId = uuidv7();
      const event = createdEvent(jobId);
      await h.bus.publish(event);

      await holdAndKill(q, event.id);

      // The idempotent side effect: applied once per event id, whatever the deliveries.
      const applied = new Map<string, number>();
      const deliveries: { redelivered: boolean }[] = [];
      await h.bus.subscribe(q, {
        'job.created': async (e, ctx) => {
          if (e.jobId !== jobId) return; // other tests publish job.created too
          deliveries.push({ redelivered: ctx.redelivered });
          if (!applied.has(e.id)) applied.set(e.id, 1);
        },
      });
      await eventually(() => deliveries.length >= 1, { what: 'redelivery' });
      expect(deliveries[0]).toEqual({ redelivered: true });

      // A duplicate of the same event (a publisher retry) changes nothing either.
      await h.bus.publish(event);
      await eventually(() => deliveries.length >= 2, { what: 'the duplicate' });
      expect([...applied.entries()]).toEqual([[event.id, 1]]);
      expect(await h.bus.depth(q.name)).toBe(0);
    } finally {
      await h.close();
    }
  });

  it(`parks a message that kills its consumer ${MAX_DELIVERIES} times, and fails its job`, { timeout: 120_000 }, async () => {
    const h = await rabbitHarness();
    const q = spec('crashloop');
    const watch = { ...spec('crashloop-failed'), bindings: ['job.failed'] };
    await h.declare(q);
    await h.declare(watch);
    try {
      const jobId = uuidv7();
      const failed: EventOf<'job.failed'>[] = [];
      await h.bus.subscribe(watch, { 'job.failed': async (e) => void (e.jobId === jobId && failed.push(e)) });
      const event = createdEvent(jobId);
      await h.bus.publish(event);
      for (let i = 0; i < MAX_DELIVERIES; i++) await holdAndKill(q, event.id);

      let handled = 0;
      await h.bus.subscribe(q, { 'job.created': async (e) => void (e.jobId === jobId && handled++) });
      const f = await eventually(() => failed[0], { what: 'job.failed' });
      expect(f.payload.reason).toMatch(/delivered 5 times without being acknowledged/);
      const parked = await eventually(async () => (await h.parked(q.name)).at(0), { what: 'the parked message' });
      expect(JSON.parse(parked.body.toString()).id).toBe(event.id);
      expect(handled).toBe(0);
    } finally {
      await h.close();
    }
  });
});
