import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { flushesDenormals } from './denormals.js';

/** What a fresh thread sees before and after flushDenormals(), computed there. */
function inThread(): Promise<{ before: boolean | undefined; took: boolean; after: boolean | undefined; f32: number; f64: number }> {
  const code = `
    const { parentPort } = require('node:worker_threads');
    import(${JSON.stringify(new URL('./denormals.ts', import.meta.url).href)}).then((m) => {
      const before = m.flushesDenormals();
      const took = m.flushDenormals();
      const after = m.flushesDenormals();
      const tiny = Number(process.env.NOT_A_CONSTANT ?? '1e-39');
      parentPort.postMessage({ before, took, after, f32: new Float32Array([tiny])[0], f64: 1e-310 * Number(process.env.NOT_A_CONSTANT ?? '1') });
    });`;
  const w = new Worker(code, { eval: true, execArgv: ['--import', import.meta.resolve('tsx')] });
  return new Promise((resolve, reject) => {
    w.once('message', (m) => void w.terminate().then(() => resolve(m)));
    w.once('error', reject);
  });
}

describe('flushing denormals on a thread', () => {
  it.runIf(process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64'))(
    'sets the thread that asks, which then computes denormal results as zero, and leaves the others as they were',
    async () => {
      const t = await inThread();
      expect(t).toEqual({ before: false, took: true, after: true, f32: 0, f64: 0 });
      // This thread (the test's) was not touched: IEEE denormals as JavaScript requires.
      expect(flushesDenormals()).toBe(false);
      expect(new Float32Array([1e-39])[0]).toBeGreaterThan(0);
      expect(Number.MIN_VALUE * Number(process.env.NOT_A_CONSTANT ?? '1')).toBeGreaterThan(0);
    },
  );
});
