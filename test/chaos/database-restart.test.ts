/** FerretDB stops and starts again mid-stream: the status service rides it out and loses nothing. */
import { jobFromCreated } from '@stemflow/jobs';
import type { AnyEvent } from '@stemflow/contracts';
import { v7 as uuidv7 } from 'uuid';
import { expect, it } from 'vitest';
import { engine } from '../support/engines.js';
import { eventually } from '../support/env.js';
import { jobLifecycle } from '../support/events.js';
import { dropQueue, mongoUrl, statusQueue, statusReplica } from '../support/status.js';

it('loses no event while the database is down', { timeout: 180_000 }, async () => {
  const q = statusQueue({ maxAttempts: 30, delaysMs: [500, 1000, 2000] });
  const s = await statusReplica(q, mongoUrl());
  try {
    const lives = Array.from({ length: 20 }, () => jobLifecycle(uuidv7()));
    for (const life of lives) await s.jobs.create(jobFromCreated(life[0] as Extract<AnyEvent, { type: 'job.created' }>));
    const events = lives.flat();
    for (const e of events.slice(0, 40)) await s.bus.publish(e);
    // Let those land first, so the outage falls mid-stream: part of every job is in the read
    // model, and the rest arrives while the database is gone.
    const kept = events.slice(0, 40).filter((e) => e.type !== 'job.progress'); // progress ids are not kept
    await eventually(async () => {
      for (const e of kept) if (!(await s.jobs.get(e.jobId))?.applied_events.includes(e.id)) return false;
      return true;
    }, { what: 'the first 40 events applied' });
    await engine('down', 'mongo');
    for (const e of events.slice(40)) await s.bus.publish(e);
    await new Promise((r) => setTimeout(r, 3000));
    expect((await s.jobs.health()).ok).toBe(false);
    await engine('up', 'mongo');
    // An event whose first attempts failed during the outage comes back from the retry queue
    // later than events that came after it: wait for every one, not just for "completed".
    for (const life of lives) {
      const kept = life.filter((e) => e.type !== 'job.progress').map((e) => e.id);
      const j = await eventually(async () => {
        const d = await s.jobs.get(life[0]!.jobId).catch(() => undefined);
        return d && kept.every((id) => d.applied_events.includes(id)) ? d : undefined;
      }, { timeoutMs: 90_000, what: 'every event of every job applied after the restart' });
      expect(j.status).toBe('completed');
      expect(j.progress).toBe(1);
      expect(j.input.duration_sec).toBe(10);
    }
    expect((await s.jobs.health()).ok).toBe(true);
  } finally {
    await engine('up', 'mongo');
    await s.stop();
    await dropQueue(q);
  }
});
