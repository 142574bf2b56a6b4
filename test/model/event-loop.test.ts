/**
 * The model off the event loop: onnxruntime-node's `session.run` is synchronous on its thread, and
 * one htdemucs run takes seconds. With the session in a worker thread (what the services run), a
 * timer fires and an HTTP request is answered while a run is in flight; run in the caller's thread
 * (the control, which shows this test can fail), the request is answered only after the run. Order,
 * not wall-clock thresholds, is what is asserted.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SEGMENT } from '@stemflow/models/shape';
import { openSession } from '@stemflow/models';
import { HtdemucsEngine, workerRunner } from '@stemflow/separator/core';
import { describe, expect, it } from 'vitest';

/** What happened first while one model run was in flight: a 10 ms timer, an HTTP round trip, the run. */
async function duringOneRun(engine: HtdemucsEngine): Promise<string[]> {
  const order: string[] = [];
  const server = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const seg = new Float32Array(2 * SEGMENT);
    for (let i = 0; i < seg.length; i++) seg[i] = 0.1 * Math.sin(i * 0.01) + 0.01 * (Math.random() - 0.5);
    const run = engine.infer(await engine.prepare(seg)).then(() => order.push('model run'));
    setTimeout(() => order.push('timer'), 10);
    const http = fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`).then(async (r) => order.push(`http ${await r.text()}`));
    await Promise.all([run, http, new Promise((r) => setTimeout(r, 20))]);
    return order;
  } finally {
    server.close();
  }
}

describe('the event loop while htdemucs runs', () => {
  it('in a worker thread (the services): the timer and the HTTP request complete before the run returns', async () => {
    const runner = await workerRunner({ device: 'cpu', threads: 0, memArena: false });
    const engine = new HtdemucsEngine(runner);
    try {
      await duringOneRun(engine); // warm-up: the first run allocates
      const order = await duringOneRun(engine);
      expect(order.at(-1)).toBe('model run');
      expect(order.slice(0, 2).sort()).toEqual(['http ok', 'timer']);
    } finally {
      await engine.close();
    }
  });

  it('control, in this thread: the HTTP request waits until the model returns', async () => {
    const { session } = await openSession({ device: 'cpu', threads: 0, memArena: false });
    const engine = new HtdemucsEngine(session);
    try {
      const order = await duringOneRun(engine);
      // (the 10 ms timer may slip in before ORT's deferred run starts; the request cannot)
      expect(order.indexOf('model run')).toBeLessThan(order.indexOf('http ok'));
    } finally {
      await engine.close();
    }
  });
});
