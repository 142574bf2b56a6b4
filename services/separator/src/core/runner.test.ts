import { describe, expect, it } from 'vitest';
import type { ModelRunner } from './runner.js';
import { supervisedRunner } from './supervised-runner.js';

/** A runner whose thread can be made to die, as an out-of-memory kill would. */
function fakeRunner(name: string) {
  let dead: Error | undefined;
  let closed = false;
  const r: ModelRunner & { die: () => void; name: string; closed: () => boolean } = {
    name,
    device: 'cpu',
    get dead() {
      return dead;
    },
    die: () => void (dead = new Error(`the model worker exited (${name})`)),
    closed: () => closed,
    run: async () => {
      if (dead) throw dead;
      return { freq: new Float32Array([1]), time: new Float32Array([2]), ms: 1 };
    },
    close: async () => void (closed = true),
  };
  return r;
}

describe('the supervised model runner', () => {
  it('replaces a worker that died, once, on the next run; reports it; closes the last one', async () => {
    const first = fakeRunner('first');
    const made: ReturnType<typeof fakeRunner>[] = [];
    const logs: string[] = [];
    const r = supervisedRunner(first, async () => {
      const n = fakeRunner(`replacement ${made.length + 1}`);
      made.push(n);
      return n;
    }, (m) => logs.push(m));
    await r.run(new Float32Array(1), new Float32Array(1));
    expect(r.restarts).toBe(0);
    first.die();
    // Three runs at once after the death: one new worker serves them all.
    await Promise.all([1, 2, 3].map(() => r.run(new Float32Array(1), new Float32Array(1))));
    expect(made).toHaveLength(1);
    expect([r.restarts, r.lastFailure, r.dead]).toEqual([1, 'the model worker exited (first)', undefined]);
    expect(logs).toEqual(['the model worker exited (first): starting a new model worker']);
    await r.close();
    expect(made[0]!.closed()).toBe(true);
  });

  it('a replacement that cannot start fails the run, and the next run tries again', async () => {
    const first = fakeRunner('first');
    let attempts = 0;
    const r = supervisedRunner(first, async () => {
      if (++attempts === 1) throw new Error('out of memory loading the model');
      return fakeRunner('second');
    });
    first.die();
    await expect(r.run(new Float32Array(1), new Float32Array(1))).rejects.toThrow(/out of memory/);
    await expect(r.run(new Float32Array(1), new Float32Array(1))).resolves.toMatchObject({ ms: 1 });
    expect(r.restarts).toBe(1);
  });
});
