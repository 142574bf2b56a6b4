/**
 * One behaviour suite, run against every EventBus adapter (in-process in unit tests, RabbitMQ in
 * test/). Each case makes its own queues and job ids, so cases never see each other's messages.
 */
import { trace } from '@opentelemetry/api';
import { EVENT_NAMES, HEADERS, StemflowError, type EventOf, type QueueSpec } from '@stemflow/contracts';
import { inMemoryTracing } from '@stemflow/telemetry/testing';
import { v7 as uuidv7 } from 'uuid';
import { describe, expect, it } from 'vitest';
import { newEvent } from './events.js';
import type { EventBus, Handlers } from './port.js';

export type Parked = { body: Buffer; headers: Record<string, unknown>; reason: string };
export type BusHarness = {
  bus: EventBus;
  /** Declares queues before anything is published (as the topology does). */
  declare(spec: QueueSpec): Promise<void>;
  publishRaw(routingKey: string, body: Buffer): Promise<void>;
  /** Everything parked for a queue so far. */
  parked(queue: string): Promise<Parked[]>;
  close(): Promise<void>;
};

const fast = (name: string, bindings: string[], extra: Partial<QueueSpec> = {}): QueueSpec => ({
  name: `test.${name}.${uuidv7()}`,
  bindings,
  prefetch: 1,
  retry: { maxAttempts: 3, delaysMs: [50, 100] },
  stage: 'testing',
  failJobOnGiveUp: true,
  description: 'contract test queue',
  ...extra,
});

const created = (jobId: string) =>
  newEvent('job.created', jobId, {
    input: { key: `jobs/${jobId}/input/a.wav`, filename: 'a.wav', size: 10, content_type: 'audio/wav', sha256: 'a'.repeat(64) },
    options: { stems: ['drums', 'bass', 'other', 'vocals'], format: 'wav16', shifts: 1, overlap: 0.25, clip: 'rescale', sample_rate: 'input', residual: false, start: 0 },
    owner: null,
  });

async function until<T>(fn: () => T | undefined | Promise<T | undefined>, what: string, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Subscribes a collector of job.failed events for one job. */
async function failures(h: BusHarness, jobId: string) {
  const spec = fast('failed', ['job.failed']);
  const got: EventOf<'job.failed'>[] = [];
  await h.declare(spec);
  const sub = await h.bus.subscribe(spec, {
    'job.failed': async (e) => {
      if (e.jobId === jobId) got.push(e);
    },
  });
  return { got, sub };
}

/** A consumer whose handler throws `error()` on every attempt for one job; resolves with its job.failed. */
async function failEveryTime(h: BusHarness, name: string, error: () => Error) {
  const jobId = uuidv7();
  const spec = fast(name, ['job.created']);
  await h.declare(spec);
  const { got } = await failures(h, jobId);
  let calls = 0;
  await h.bus.subscribe(spec, {
    'job.created': async (e) => {
      if (e.jobId !== jobId) return;
      calls++;
      throw error();
    },
  });
  await h.bus.publish(created(jobId));
  const failed = await until(() => got[0], 'job.failed');
  return { jobId, spec, calls: () => calls, failed };
}

/** Runs a case on a fresh harness and always closes it. */
async function withBus(make: () => Promise<BusHarness>, fn: (h: BusHarness) => Promise<void>) {
  const h = await make();
  try {
    await fn(h);
  } finally {
    await h.close();
  }
}

export function busContract(name: string, make: () => Promise<BusHarness>) {
  describe(`EventBus contract: ${name}`, () => {
    it('delivers a published event, typed and validated, to each bound queue', () =>
      withBus(make, async (h) => {
      const jobId = uuidv7();
      const a = fast('a', ['job.created']);
      const b = fast('b', ['job.*']);
      await h.declare(a);
      await h.declare(b);
      const seenA: string[] = [];
      const seenB: string[] = [];
      await h.bus.subscribe(a, { 'job.created': async (e, ctx) => void (e.jobId === jobId && seenA.push(`${e.payload.input?.filename}#${ctx.attempt}`)) });
      const all: Handlers = {};
      for (const n of EVENT_NAMES) {
        (all as Record<string, unknown>)[n] = async (e: { jobId: string; type: string }) => void (e.jobId === jobId && seenB.push(e.type));
      }
      await h.bus.subscribe(b, all);
      await h.bus.publish(created(jobId));
      await h.bus.publish(newEvent('job.canceled', jobId, {}));
      await until(() => (seenA.length === 1 && seenB.length === 2 ? true : undefined), 'both queues');
      expect(seenA).toEqual(['a.wav#1']);
      expect(seenB).toEqual(['job.created', 'job.canceled']);
      }));

    it('refuses to subscribe when a consumed event has no handler', () =>
      withBus(make, async (h) => {
      await expect(h.bus.subscribe(fast('x', ['job.#']), { 'job.created': async () => {} })).rejects.toThrow(/no handler for job.imported, job.decoded/);
      await expect(h.bus.subscribe(fast('y', ['job.created']), { 'job.created': async () => {}, 'job.failed': async () => {} })).rejects.toThrow(
        /never receives: job.failed/,
      );
      }));

    it('keeps per-queue order with prefetch 1', () =>
      withBus(make, async (h) => {
      const jobId = uuidv7();
      const spec = fast('order', ['job.progress']);
      await h.declare(spec);
      for (let i = 0; i < 20; i++) await h.bus.publish(newEvent('job.progress', jobId, { stage: 'separating', progress: i / 20 }));
      const seen: number[] = [];
      await h.bus.subscribe(spec, { 'job.progress': async (e) => void (e.jobId === jobId && seen.push(Math.round(e.payload.progress * 20))) });
      await until(() => (seen.length === 20 ? true : undefined), '20 events');
      expect(seen).toEqual([...Array(20).keys()]);
      }));

    it('retries a retryable failure with backoff and headers, then succeeds', () =>
      withBus(make, async (h) => {
      const jobId = uuidv7();
      const spec = fast('retry', ['job.created']);
      await h.declare(spec);
      const attempts: { attempt: number; at: number }[] = [];
      await h.bus.subscribe(spec, {
        'job.created': async (e, ctx) => {
          if (e.jobId !== jobId) return;
          attempts.push({ attempt: ctx.attempt, at: Date.now() });
          if (ctx.attempt < 3) throw new Error(`store hiccup ${ctx.attempt}`);
        },
      });
      await h.bus.publish(created(jobId));
      await until(() => (attempts.length === 3 ? true : undefined), '3 attempts');
      expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
      // Jittered delays: at least half of each level (50 ms, 100 ms).
      expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(24);
      expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(49);
      expect(await h.parked(spec.name)).toEqual([]);
      }));

    it('parks a poison message after the attempt limit and fails its job', () =>
      withBus(make, async (h) => {
      const { jobId, spec, calls, failed } = await failEveryTime(h, 'poison', () => new Error('segfault in the codec'));
      expect(calls()).toBe(3);
      expect(failed.payload).toMatchObject({ stage: 'testing', code: 'GAVE_UP', retryable: false });
      expect(failed.payload.reason).toBe('gave up after 3 attempts: segfault in the codec');
      const parked = await until(async () => {
        const p = await h.parked(spec.name);
        return p.length ? p : undefined;
      }, 'parked message');
      expect(parked).toHaveLength(1);
      expect(parked[0]!.reason).toBe('gave up after 3 attempts: segfault in the codec');
      expect(JSON.parse(parked[0]!.body.toString()).jobId).toBe(jobId);
      expect(Number(String(parked[0]!.headers[HEADERS.retryCount]))).toBe(2);
      }));

    it('fails the job at once, without retries, on a permanent error', () =>
      withBus(make, async (h) => {
      const { spec, calls, failed } = await failEveryTime(h, 'permanent', () => new StemflowError('NOT_AUDIO', 'The file is not audio: it looks like a text document.'));
      expect(failed.payload).toEqual({ stage: 'testing', code: 'NOT_AUDIO', reason: 'The file is not audio: it looks like a text document.', retryable: false });
      await new Promise((r) => setTimeout(r, 200));
      expect(calls()).toBe(1);
      expect(await h.parked(spec.name)).toEqual([]);
      }));

    it('parks malformed JSON and schema violations immediately, with the reason', () =>
      withBus(make, async (h) => {
      const spec = fast('bad', ['job.completed']);
      await h.declare(spec);
      // Other tests may publish job.completed too: only this test's job ids count.
      const forgedJob = uuidv7();
      const jobId = uuidv7();
      const seen: string[] = [];
      await h.bus.subscribe(spec, { 'job.completed': async (e) => void ((e.jobId === forgedJob || e.jobId === jobId) && seen.push(e.jobId)) });
      await h.publishRaw('job.completed', Buffer.from('{"type": "job.completed", oops'));
      const forged = { ...newEvent('job.canceled', forgedJob, {}), type: 'job.completed', payload: { stems: [], model: 'x', timings: {} } };
      await h.publishRaw('job.completed', Buffer.from(JSON.stringify(forged)));
      const parked = await until(async () => {
        const p = await h.parked(spec.name);
        return p.length >= 2 ? p : undefined;
      }, 'two parked messages');
      const reasons = parked.map((p) => p.reason).sort();
      expect(reasons[0]).toMatch(/^job.completed violates its schema: payload.stems: /);
      expect(reasons[1]).toMatch(/^malformed JSON: /);
      expect(seen).toEqual([]);
      // The consumer is still alive.
      const ok = newEvent('job.completed', jobId, { stems: [{ name: 'vocals', format: 'wav16', key: 'k', bytes: 1 }], model: 'htdemucs', timings: {} });
      await h.bus.publish(ok);
      await until(() => (seen.length === 1 ? true : undefined), 'a valid event after the bad ones');
      expect(seen).toEqual([jobId]);
      }));

    it("makes the consumer's span a child of the publisher's trace, across a retry", () => {
      inMemoryTracing();
      return withBus(make, async (h) => {
      const jobId = uuidv7();
      const spec = fast('trace', ['job.created']);
      await h.declare(spec);
      const seen: string[] = [];
      await h.bus.subscribe(spec, {
        'job.created': async (e, ctx) => {
          if (e.jobId !== jobId) return;
          seen.push(trace.getActiveSpan()!.spanContext().traceId);
          if (ctx.attempt === 1) throw new Error('transient');
        },
      });
      const traceId = await trace.getTracer('test').startActiveSpan('upload', async (span) => {
        await h.bus.publish(created(jobId));
        span.end();
        return span.spanContext().traceId;
      });
      await until(() => (seen.length === 2 ? true : undefined), 'two attempts');
      expect(seen).toEqual([traceId, traceId]);
      });
    });
  });
}
