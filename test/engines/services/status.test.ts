import { jobFromCreated, project } from '@stemflow/jobs';
import type { AnyEvent, Job } from '@stemflow/contracts';
import { v7 as uuidv7 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { eventually } from '../../support/env.js';
import { jobLifecycle, shuffle } from '../../support/events.js';
import { dropQueue, mongoUrl, statusQueue, statusReplica } from '../../support/status.js';

const inOrder = (events: AnyEvent[]) => events.reduce<Job | undefined>((j, e) => project(j, e).job ?? j, undefined)!;
const strip = (j: Job) => ({ ...j, applied_events: [] });

describe('status service on RabbitMQ and FerretDB', () => {
  it('parks an event for a job it never had after its retries, and keeps going', async () => {
    const q = statusQueue({ maxAttempts: 3, delaysMs: [100] });
    const s = await statusReplica(q, mongoUrl());
    try {
      const ghost = jobLifecycle(uuidv7());
      await s.bus.publish(ghost[5]!); // a job.completed for no job
      const real = jobLifecycle(uuidv7());
      await s.jobs.create(jobFromCreated(real[0] as Extract<AnyEvent, { type: 'job.created' }>));
      for (const e of real) await s.bus.publish(e);
      await eventually(async () => (await s.jobs.get(real[0]!.jobId))?.status === 'completed', { what: 'the real job' });
      expect(await s.jobs.get(ghost[0]!.jobId)).toBeUndefined();
    } finally {
      await s.stop();
      await dropQueue(q);
    }
  });

  it('projects shuffled and duplicated events of many jobs into their final documents', async () => {
    const q = statusQueue({ maxAttempts: 20, delaysMs: [100, 300] });
    const s = await statusReplica(q, mongoUrl());
    try {
      const lives = Array.from({ length: 10 }, () => jobLifecycle(uuidv7()));
      // As the gateway does: the document exists before any event is published.
      for (const life of lives) await s.jobs.create(jobFromCreated(life[0] as Extract<AnyEvent, { type: 'job.created' }>));
      for (const life of lives) for (const e of shuffle([...life, ...life])) await s.bus.publish(e);
      for (const life of lives) {
        const want = strip(inOrder(life));
        const got = await eventually(async () => {
          const j = await s.jobs.get(life[0]!.jobId);
          return j?.status === 'completed' && j.input.duration_sec === 10 ? j : undefined;
        }, { timeoutMs: 30_000, what: 'a completed job' });
        expect(strip(got)).toEqual(want);
      }
    } finally {
      await s.stop();
      await dropQueue(q);
    }
  });

  it('two replicas on one queue: one active, the other takes over, no job corrupted', async () => {
    const q = statusQueue({ maxAttempts: 20, delaysMs: [100, 300] });
    const db = mongoUrl();
    const a = await statusReplica(q, db);
    const b = await statusReplica(q, db);
    try {
      const lives = Array.from({ length: 40 }, () => jobLifecycle(uuidv7()));
      for (const life of lives) await a.jobs.create(jobFromCreated(life[0] as Extract<AnyEvent, { type: 'job.created' }>));
      const events = lives.flat();
      const half = Math.floor(events.length / 2);
      for (const e of events.slice(0, half)) await a.bus.publish(e);
      await a.stop(); // the active one goes away mid-stream; b takes over
      for (const e of events.slice(half)) await b.bus.publish(e);
      for (const life of lives) {
        const got = await eventually(async () => {
          const j = await b.jobs.get(life[0]!.jobId);
          return j?.status === 'completed' ? j : undefined;
        }, { timeoutMs: 30_000, what: `job ${life[0]!.jobId} completed (it is ${(await b.jobs.get(life[0]!.jobId))?.status}; queue depth ${await b.bus.depth(q.name)})` });
        expect(strip(got)).toEqual(strip(inOrder(life)));
      }
    } finally {
      await b.stop();
      await dropQueue(q);
    }
  });
});
