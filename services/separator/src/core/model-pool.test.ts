import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { ort, type Quality } from '@stemflow/models';
import { SEGMENT } from '@stemflow/models/shape';
import { beforeAll, describe, expect, it } from 'vitest';
import { HtdemucsEngine } from './engine.js';
import { ModelPool } from './model-pool.js';
import { runPass, type Region } from './pass.js';
import { planChunks } from './plan.js';
import { RunWithdrawn, inProcessRunner, type ModelRunner } from './runner.js';

const tinyModel = fileURLToPath(new URL('../../../../models/tiny/tiny-htdemucs.onnx', import.meta.url));

/** A session whose runs the test releases by hand, recording what ran on it. */
function heldRunner(name: string, quality?: Quality) {
  const log: string[] = [];
  const held: (() => void)[] = [];
  let loaded = quality;
  const r: ModelRunner & { quality?: Quality; log: string[]; release: () => void } = {
    device: 'cpu',
    get quality() {
      return loaded;
    },
    log,
    release: () => held.shift()?.(),
    select: async (q) => {
      log.push(`${name} switched to ${q}`);
      loaded = q;
    },
    run: async (mix) => {
      log.push(`${name} ran ${mix[0]}`);
      await new Promise<void>((res) => held.push(res));
      return { freq: new Float32Array(1), time: new Float32Array(1), ms: 1 };
    },
    close: async () => {},
  };
  return r;
}
/**
 * A session that queues, as a model worker does: runs given while one computes wait behind it, in
 * order, and one whose signal is aborted before its turn is answered RunWithdrawn.
 */
function queueingRunner(name: string, quality: Quality) {
  const held = heldRunner(name, quality);
  let line = Promise.resolve();
  const r: typeof held = Object.assign(Object.create(null) as object, held, {
    queues: true,
    run: (mix: Float32Array, spec: Float32Array, signal?: AbortSignal) => {
      held.log.push(`${name} got ${mix[0]}`);
      const out = line.then(() => {
        if (signal?.aborted) throw new RunWithdrawn();
        return held.run(mix, spec);
      });
      line = out.then(() => {}, () => {});
      return out;
    },
  });
  Object.defineProperty(r, 'quality', { get: () => held.quality });
  return r;
}
const input = (n: number) => [new Float32Array([n]), new Float32Array(1)] as const;
const until = async (cond: () => boolean) => {
  while (!cond()) await sleep(1);
};

describe('the model pool', () => {
  it('serves the earliest job first when a session frees, and a session its own quality before switching it', async () => {
    const a = heldRunner('a', 'fast');
    const b = heldRunner('b', 'fast');
    const pool = new ModelPool([a, b]);
    const early = pool.lease(0);
    const late = pool.lease(1);
    await early.select!('fast');
    await late.select!('full');
    const done: Promise<unknown>[] = [];
    done.push(early.run(...input(1)), early.run(...input(2))); // both sessions busy
    await until(() => a.log.length + b.log.length === 2);
    done.push(late.run(...input(10)), early.run(...input(3))); // the later job asked first
    a.release(); // a (fast) frees: the early job's run goes first, and it is of a's quality
    await until(() => a.log.length === 2);
    expect(a.log).toEqual(['a ran 1', 'a ran 3']);
    b.release(); // b frees: only the late job's full run waits, so b switches for it
    await until(() => b.log.length === 3);
    expect(b.log).toEqual(['b ran 2', 'b switched to full', 'b ran 10']);
    a.release();
    b.release();
    await Promise.all(done);
    expect(pool.lease(2).lanes).toBe(3); // the sessions, and one run waiting
  });

  it("withdraws a stopped job's runs that no session took, and only its own", async () => {
    const a = heldRunner('a');
    const pool = new ModelPool([a]);
    const first = pool.lease(0);
    const second = pool.lease(1);
    const running = first.run(...input(1));
    await until(() => a.log.length === 1);
    const waiting = [second.run(...input(2)), second.run(...input(3))];
    const kept = first.run(...input(4));
    second.withdraw();
    await expect(Promise.all(waiting.map((p) => p.catch((e: unknown) => e)))).resolves.toEqual([expect.any(RunWithdrawn), expect.any(RunWithdrawn)]);
    a.release();
    await until(() => a.log.length === 2);
    a.release();
    await Promise.all([running, kept]);
    expect(a.log).toEqual(['a ran 1', 'a ran 4']);
  });
});

describe('a pool of one session that queues (a model worker)', () => {
  it('gives the session the next run while it computes, an earlier job first; a run of another graph waits', async () => {
    const a = queueingRunner('a', 'fast');
    const pool = new ModelPool([a]);
    const early = pool.lease(0);
    const late = pool.lease(1);
    await early.select!('fast');
    await late.select!('full');
    expect(early.lanes).toBe(3); // computing, queued behind it, and one waiting here
    const done = [early.run(...input(1)), early.run(...input(2))];
    // Both are in the session at once: the second starts as the first returns, with no round trip.
    await until(() => a.log.includes('a got 2'));
    expect(a.log).toEqual(['a got 1', 'a ran 1', 'a got 2']);
    const other = late.run(...input(10)); // full: not behind a fast run
    done.push(early.run(...input(3)));
    a.release(); // 1 returns, 2 computes: the early job's 3 queues behind it, the late job's full run still waits
    await until(() => a.log.includes('a got 3'));
    expect(a.log.filter((l) => l.includes('10'))).toEqual([]);
    a.release();
    await until(() => a.log.includes('a ran 3'));
    a.release(); // the session is free: it switches for the full run
    await until(() => a.log.includes('a ran 10'));
    expect(a.log.slice(-3)).toEqual(['a switched to full', 'a got 10', 'a ran 10']);
    a.release();
    await Promise.all([...done, other]);
  });

  it('withdrawing a job reaches its run queued in the session, not the one computing', async () => {
    const a = queueingRunner('a', 'fast');
    const pool = new ModelPool([a]);
    const job = pool.lease(0);
    const computing = job.run(...input(1));
    const queued = job.run(...input(2)).catch((e: unknown) => e);
    const waiting = job.run(...input(3)).catch((e: unknown) => e);
    await until(() => a.log.includes('a got 2'));
    job.withdraw();
    a.release();
    await expect(computing).resolves.toMatchObject({ ms: 1 });
    expect(await queued).toBeInstanceOf(RunWithdrawn);
    expect(await waiting).toBeInstanceOf(RunWithdrawn);
    // The session is free again, for the next job.
    const next = pool.lease(1).run(...input(4));
    await until(() => a.log.includes('a ran 4'));
    a.release();
    await next;
    expect(a.log.filter((l) => l.includes('ran'))).toEqual(['a ran 1', 'a ran 4']);
  });

  it('a pool of several sessions commits no run to a busy one', async () => {
    const [a, b] = [queueingRunner('a', 'fast'), queueingRunner('b', 'fast')];
    const pool = new ModelPool([a, b]);
    const job = pool.lease(0);
    expect(job.lanes).toBe(3);
    const done = [1, 2, 3].map((n) => job.run(...input(n)));
    await until(() => a.log.length + b.log.length === 4); // two got, two ran
    b.release(); // b frees first: the third run goes to it, not behind a
    await until(() => b.log.includes('b got 3'));
    expect(a.log).toEqual(['a got 1', 'a ran 1']);
    a.release();
    b.release();
    await Promise.all(done);
  });
});

describe('a pass on a pool of sessions', () => {
  let session: ort.InferenceSession;
  beforeAll(async () => {
    session = await ort.InferenceSession.create(tinyModel);
  });

  /**
   * A tiny-model runner counting runs at once; `pairs` holds each run until a second one runs
   * beside it (or it is the plan's last), so a pass that keeps two in flight is seen to.
   */
  const slow = (counter: { now: number; max: number; runs: number }, pairs = false): ModelRunner => {
    const inner = inProcessRunner(session);
    return {
      device: 'cpu',
      run: async (mix, spec) => {
        counter.runs++;
        counter.now++;
        counter.max = Math.max(counter.max, counter.now);
        await sleep(5);
        while (pairs && counter.now < 2 && counter.runs < plan.length) await sleep(1);
        try {
          return await inner.run(mix, spec);
        } finally {
          counter.now--;
        }
      },
      close: async () => {},
    };
  };

  const frames = 5 * SEGMENT;
  const mix = new Float32Array(2 * frames).map((_, i) => Math.sin(i * 0.013) * 0.3 + Math.sin(i * 0.31) * 0.1);
  const read = async (start: number, len: number) => {
    const out = new Float32Array(2 * len);
    for (let c = 0; c < 2; c++) for (let i = 0; i < len; i++) {
      const t = start + i;
      out[c * len + i] = t >= 0 && t < frames ? mix[c * frames + t]! : 0;
    }
    return out;
  };
  const view = { viewOffset: 0, viewLength: frames, trackLength: frames };
  const plan = planChunks(frames, 0.25);
  const collect = async (engine: HtdemucsEngine, stopAfter = Infinity, how: true | 'now' = true) => {
    const regions: [number, Region][] = [];
    const r = await runPass(engine, read, view, plan, { onChunk: async (k, region) => void regions.push([k, region]), shouldStop: async () => regions.length >= stopAfter && how });
    return { r, regions };
  };

  it('runs as many chunks at once as the pool has sessions, and hands on the same samples in the same order as one session', async () => {
    const one = { now: 0, max: 0, runs: 0 };
    const two = { now: 0, max: 0, runs: 0 };
    const alone = await collect(new HtdemucsEngine(slow(one)));
    const pooled = await collect(new HtdemucsEngine(new ModelPool([slow(two, true), slow(two, true)]).lease(0)));
    expect(plan.length).toBeGreaterThan(3);
    expect(one.max).toBe(1);
    expect(two.max).toBe(2);
    expect(pooled.r).toBe('done');
    expect(pooled.regions.map(([k]) => k)).toEqual(plan.map((c) => c.index));
    for (const [i, [, region]] of pooled.regions.entries()) {
      const [, want] = alone.regions[i]!;
      expect([region.start, region.length]).toEqual([want.start, want.length]);
      expect(Buffer.from(region.data.buffer).equals(Buffer.from(want.data.buffer))).toBe(true);
    }
  });

  it('stopped, launches no more chunks and still hands on those started, in order; stopped now, hands on none', async () => {
    expect(plan.length).toBeGreaterThan(4);
    const counter = { now: 0, max: 0, runs: 0 };
    const { r, regions } = await collect(new HtdemucsEngine(new ModelPool([slow(counter)]).lease(0)), 1);
    expect(r).toBe('stopped');
    // One session, a run waiting: asked once chunk 0 was handed on, 1 had started as 0 returned and
    // 2 had been asked for; both are handed on, and chunk 3 never runs.
    expect(regions.map(([k]) => k)).toEqual([0, 1, 2]);
    expect(counter.runs).toBe(3);
    const now = { now: 0, max: 0, runs: 0 };
    const canceled = await collect(new HtdemucsEngine(new ModelPool([slow(now)]).lease(0)), 1, 'now');
    expect(canceled.r).toBe('stopped');
    expect(canceled.regions.map(([k]) => k)).toEqual([0]);
  });

  it('canceled once every chunk is launched, stops as the next run returns instead of finishing the plan', async () => {
    const counter = { now: 0, max: 0, runs: 0 };
    const regions: number[] = [];
    const r = await runPass(new HtdemucsEngine(new ModelPool([slow(counter), slow(counter)]).lease(0)), read, view, plan, {
      onChunk: async (k) => void regions.push(k),
      shouldStop: async () => (counter.runs === plan.length ? 'now' : false),
    });
    expect(r).toBe('stopped');
    expect(counter.runs).toBe(plan.length);
    expect(regions.length).toBeLessThan(plan.length);
  });
});
