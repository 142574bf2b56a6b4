/**
 * The model's thread: opens the ONNX Runtime session (weights verified by sha256) and runs it on
 * the inputs the main thread sends, one at a time, replying with the outputs. See runner.ts.
 */
import { setPriority } from 'node:os';
import { setImmediate as turn } from 'node:timers/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { describeError, StemflowError } from '@stemflow/contracts';
import { flushesDenormals, openSession, type SessionOptions } from '@stemflow/models';
import { inputNames, runSession } from './runner.js';

const port = parentPort!;
const o = workerData as Omit<SessionOptions, 'log'> & { modelPath?: string; nice?: number };
// The model is batch work: this thread, and ONNX Runtime's threads it starts (which inherit it),
// yield the cores to the main thread's event loop (HTTP, heartbeats, the chunks' DSP) the moment
// it has work. On Linux a thread's niceness is its own, so the main thread keeps its priority;
// elsewhere it is the process's, and nothing is changed.
if (o.nice && process.platform === 'linux') {
  try {
    setPriority(o.nice);
  } catch {
    // not permitted or not supported here: the model runs at the process's priority
  }
}
try {
  // This thread only runs the model: its denormals (and ORT's threads') are flushed to zero, which
  // makes a run 1.3-1.5× faster with the same outputs (models/src/denormals.ts).
  const { session, device } = await openSession({ ...o, flushDenormals: true, log: (msg) => port.postMessage({ type: 'log', msg }) }, o.modelPath);
  const names = inputNames(session);
  // Runs are served in the order asked (ids increase). One asked while another computes waits here
  // and starts as that one returns; withdrawn before then, it is answered `withdrawn`, not run.
  let queue = Promise.resolve();
  let started = -1;
  const withdrawn = new Set<number>();
  port.on('message', (m: { id: number; mix: Float32Array; spec: Float32Array } | { withdraw: number }) => {
    if ('withdraw' in m) {
      if (m.withdraw > started) withdrawn.add(m.withdraw);
      return;
    }
    queue = queue.then(async () => {
      // A turn of the loop first: messages that came during the previous run (this run's
      // withdrawal among them) are read before it starts.
      await turn();
      started = m.id;
      if (withdrawn.delete(m.id)) {
        port.postMessage({ id: m.id, withdrawn: true });
        return;
      }
      try {
        const { freq, time, ms } = await runSession(session, names, m.mix, m.spec);
        try {
          port.postMessage({ id: m.id, freq, time, ms }, [freq.buffer as ArrayBuffer, time.buffer as ArrayBuffer]);
        } catch {
          port.postMessage({ id: m.id, freq, time, ms }); // buffers ORT will not let go of: copied
        }
      } catch (err) {
        port.postMessage({ id: m.id, error: describeError(err) });
      }
    });
  });
  port.postMessage({ type: 'ready', device, flushesDenormals: flushesDenormals() === true });
} catch (err) {
  port.postMessage({ type: 'failed', error: describeError(err), ...(err instanceof StemflowError ? { code: err.code } : {}) });
}
