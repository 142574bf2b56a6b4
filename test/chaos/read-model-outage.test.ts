/**
 * The read model off the paths that wait: decoder and separator read no database, a cancel reaches
 * the separator through the bus, and SSE is pushed from the bus to every gateway. Each service its
 * own process, on the real engines; FerretDB is stopped while jobs run.
 */
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cancelsQueue, type EventOf } from '@stemflow/contracts';
import { startCluster, type Cluster } from '../support/cluster.js';
import { engine } from '../support/engines.js';
import { eventually } from '../support/env.js';
import { mixtureWav, uploadJob, type SseEvent } from '../support/jobs-http.js';
import { ServiceProcess } from '../support/processes.js';
import { createParser } from 'eventsource-parser';

let c: Cluster;
let song8: Buffer;
let song60: Buffer;
beforeAll(async () => {
  c = await startCluster({ env: { LOG_LEVEL: 'info' } });
  [{ wav: song8 }, { wav: song60 }] = await Promise.all([mixtureWav(8), mixtureWav(60)]);
}, 180_000);
afterAll(async () => {
  await engine('up', 'mongo');
  await c?.stop();
});

type Seen = SseEvent & { id: string; at: number };
/**
 * Follows a job's events as EventSource does: on a dropped stream it reconnects after a second
 * with Last-Event-ID, until a final event. `api()` is asked each time (a gateway restarted).
 */
async function follow(api: () => string, id: string, onEvent?: (e: Seen) => void): Promise<Seen[]> {
  const seen: Seen[] = [];
  let lastId: string | undefined;
  for (;;) {
    try {
      const res = await fetch(`${api()}/api/jobs/${id}/events`, { headers: lastId ? { 'last-event-id': lastId } : {} });
      if (res.status !== 200) throw new Error(`status ${res.status}`);
      const parser = createParser({
        onEvent: (m) => {
          const e: Seen = { event: m.event ?? 'message', data: JSON.parse(m.data), id: m.id ?? '', at: Date.now() };
          if (e.id) lastId = e.id;
          seen.push(e);
          onEvent?.(e);
        },
      });
      const dec = new TextDecoder();
      for await (const chunk of res.body!) parser.feed(dec.decode(chunk, { stream: true }));
    } catch {
      /* the gateway went away: reconnect */
    }
    if (['completed', 'failed', 'canceled'].includes(seen.at(-1)?.event ?? '')) return seen;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

describe('with the database down', () => {
  it('a whole job completes, its SSE client sees every change live from the bus, and the read model catches up afterwards', async () => {
    const id = await uploadJob(c.api, { name: `outage-${uuidv7()}.wav`, data: song8 });
    let opened = false;
    const following = follow(() => c.api, id, () => (opened = true));
    await eventually(() => opened, { what: 'the stream open' });
    await engine('down', 'mongo');
    try {
      const events = await following;
      // Still down: none of this came from the read model.
      expect((await c.jobs.health()).ok).toBe(false);
      expect(events.at(-1)!.event).toBe('completed');
      const separating = events.filter((e) => e.data.stage === 'separating');
      expect(separating.length).toBeGreaterThanOrEqual(2);
      const progress = events.map((e) => e.data.progress as number);
      expect(progress).toEqual([...progress].sort((a, b) => a - b)); // never backwards
      // Live: changes arrived as they happened, not together at the end.
      expect(events.at(-1)!.at - separating[0]!.at).toBeGreaterThan(1000);
      expect(events.at(-1)!.data.stems).toHaveLength(4);
    } finally {
      await engine('up', 'mongo');
    }
    const doc = await eventually(async () => {
      const j = await c.jobs.get(id).catch(() => undefined);
      return j?.status === 'completed' ? j : undefined;
    }, { timeoutMs: 120_000, what: 'the read model catching up' });
    expect(doc.stems).toHaveLength(4);
    expect(c.terminal.get(id)?.map((e) => e.type)).toEqual(['job.completed']);
  });

  it('a cancel reaches the separator within one chunk', async () => {
    // A tap on chunk progress, on a queue of its own.
    const chunks: { index: number; count: number; at: number }[] = [];
    const tap = await c.bus.subscribe({ ...cancelsQueue(uuidv7()), name: `test.chunks.${uuidv7()}`, bindings: ['job.progress'] }, {
      'job.progress': async (e: EventOf<'job.progress'>) => void (e.payload.chunk && chunks.push({ index: e.payload.chunk.index, count: e.payload.chunk.count, at: Date.now() })),
    });
    try {
      const id = await uploadJob(c.api, { name: `cancel-${uuidv7()}.wav`, data: song60 });
      // Down before the separator starts, so the cancel follows the first chunk at once: stopping
      // an engine takes seconds on a busy machine, and a whole minute of song is ten chunks.
      await engine('down', 'mongo');
      try {
        await eventually(() => chunks.length >= 1, { timeoutMs: 120_000, what: 'the first chunk separated' });
        const canceledAt = Date.now();
        const chunksAtCancel = chunks.length;
        const count = chunks[0]!.count;
        const res = await fetch(`${c.api}/api/jobs/${id}/cancel`, { method: 'POST' });
        expect(res.status, await res.clone().text()).toBe(202);
        expect(chunksAtCancel, 'canceled with chunks left to run').toBeLessThan(count - 2);
        const separator = c.services.separator!;
        await eventually(() => separator.log.includes('canceled between chunks'), { timeoutMs: 60_000, what: () => `the separator stopping; its log ends:\n${separator.log.slice(-3000)}` });
        // Within one chunk: no model run starts after the cancel arrives. A chunk's progress is
        // published as the next one starts, so at most two show up after it: the chunk that had
        // just finished, and the one the model was running.
        expect(chunks.filter((x) => x.at > canceledAt).length).toBeLessThanOrEqual(2);
        expect(chunks.length).toBeLessThanOrEqual(chunksAtCancel + 2);
        expect(c.terminal.get(id)?.some((e) => e.type === 'job.completed')).toBeFalsy();
      } finally {
        await engine('up', 'mongo');
      }
    } finally {
      await tap.close();
    }
  });
});

describe('several gateways', () => {
  it('a client on each sees the same events; a gateway killed mid-job and restarted resumes its stream with Last-Event-ID', async () => {
    const second = new ServiceProcess('gateway', c.env, Number(new URL(c.api).port) + 100);
    await second.start();
    try {
      const id = await uploadJob(c.api, { name: `two-${uuidv7()}.wav`, data: song8 }, { format: 'flac' });
      let killed = false;
      const first = c.services.gateway!;
      const onFirst = follow(() => c.api, id, (e) => {
        // After the first chunk, the gateway this client is on dies and comes back.
        if (!killed && e.data.stage === 'separating') {
          killed = true;
          void first.kill('SIGKILL').then(() => first.start());
        }
      });
      const onSecond = follow(() => `http://127.0.0.1:${second.port}`, id);
      const [a, b] = await Promise.all([onFirst, onSecond]);
      expect(killed).toBe(true);
      for (const events of [a, b]) {
        expect(events.at(-1)!.event).toBe('completed');
        const ids = events.map((e) => e.id);
        expect(ids).toEqual([...ids].sort()); // in order
        expect(new Set(ids).size).toBe(ids.length); // nothing twice, across the reconnect too
      }
      // The same states: what the restarted gateway's client saw, the other client saw too.
      const bIds = new Set(b.map((e) => e.id));
      expect(a.map((e) => e.id).filter((x) => !bIds.has(x))).toEqual([]);
      expect(a.at(-1)!.id).toBe(b.at(-1)!.id);
    } finally {
      await second.kill('SIGTERM');
    }
  });
});
