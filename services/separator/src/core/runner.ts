/**
 * Where the ONNX graph runs. onnxruntime-node's `session.run` is synchronous on the calling
 * thread (its async API only defers it with setImmediate): a 3–5 s htdemucs run on the main thread
 * freezes the process — HTTP, health, metrics, broker heartbeats, and the DSP meant to overlap it.
 * So services run the model in a worker thread that owns the session (`workerRunner`); the main
 * thread sends it the chunk's inputs and gets the outputs back, moving buffers instead of copying
 * them where it can. `inProcessRunner` runs a session in the caller's thread: tests with the tiny
 * model and benchmarks comparing against it.
 */
import { Worker } from 'node:worker_threads';
import { BINS, FRAMES, SEGMENT } from '@stemflow/models/shape';
import { StemflowError } from '@stemflow/contracts';
import { ort, type Quality, type SessionOptions } from '@stemflow/models';

export type ModelOutputs = { freq: Float32Array; time: Float32Array };

/** A run asked for and withdrawn before it started (its job stopped). */
export class RunWithdrawn extends Error {
  constructor() {
    super('the run was withdrawn before it started');
  }
}

export type ModelRunner = {
  readonly device: 'cpu' | 'cuda';
  /**
   * One run on a segment ([1,2,SEGMENT]) and its spectrogram ([1,4,BINS,FRAMES]). The inputs are
   * consumed (moved). A runner that `queues` takes a run while it computes another: it waits in the
   * model's thread, and `signal` aborted before it starts withdraws it (RunWithdrawn).
   */
  run(mix: Float32Array, spec: Float32Array, signal?: AbortSignal): Promise<ModelOutputs & { ms: number }>;
  /**
   * Whether a run asked while another computes waits in the model's own thread and starts the
   * moment that one returns, instead of after a round trip through the caller's thread (which on
   * busy cores costs 20-40 ms a run: the niced model thread waits its turn to be woken). Absent: no.
   */
  readonly queues?: boolean;
  close(): Promise<void>;
  /** Why the runner can run no more (its thread died), or undefined while it can. */
  readonly dead?: Error | undefined;
  /** Resolves once the runner's thread is gone (a worker's; absent for a runner without one). */
  readonly exited?: Promise<void>;
  /** Makes the next runs use this quality's graph (a runner with one graph has no choice: absent). */
  select?(quality: Quality): Promise<void>;
  /** Runs a caller keeps asked at once (a pool's sessions, and one waiting); 1 when absent. */
  readonly lanes?: number;
  /** Fails the runs asked and not yet started (RunWithdrawn); absent where none wait. */
  withdraw?(): void;
};
/** A runner whose model lives in a worker thread. */
export type WorkerRunner = ModelRunner & {
  /**
   * Kills the model's thread as a crash would: every run in flight and every later one fails at
   * once ("the model worker was terminated"); the thread itself ends as soon as the native run it
   * is inside returns (onnxruntime-node aborts the whole process if a thread is terminated inside
   * a run). Resolves once it is gone. close() is the same, for an orderly end.
   */
  terminate(): Promise<void>;
  /** Whether the model's thread flushes denormals to zero (models/src/denormals.ts: a run 1.3-1.5× faster). */
  readonly flushesDenormals: boolean;
};

/** Input names told apart by rank: the mix is [1,2,T], the spectrogram [1,4,F,T]. */
export function inputNames(session: ort.InferenceSession): { mix: string; spec: string } {
  const meta = session.inputMetadata as unknown as { name: string; shape?: unknown[] }[] | undefined;
  const byRank = (rank: number) => meta?.find((m) => Array.isArray(m.shape) && m.shape.length === rank)?.name;
  return { mix: byRank(3) ?? session.inputNames[0]!, spec: byRank(4) ?? session.inputNames[1]! };
}

/** One run of the graph: the frequency branch [1,4,4,F,T] and the time branch [1,4,2,SEGMENT]. */
export async function runSession(session: ort.InferenceSession, names: { mix: string; spec: string }, mix: Float32Array, spec: Float32Array): Promise<ModelOutputs & { ms: number }> {
  const t0 = performance.now();
  const out = await session.run({ [names.mix]: new ort.Tensor('float32', mix, [1, 2, SEGMENT]), [names.spec]: new ort.Tensor('float32', spec, [1, 4, BINS, FRAMES]) });
  const ms = performance.now() - t0;
  let freq: Float32Array | undefined;
  let time: Float32Array | undefined;
  for (const t of Object.values(out)) {
    if (t.dims.length === 5) freq = t.data as Float32Array;
    else if (t.dims.length === 4) time = t.data as Float32Array;
  }
  if (!freq || !time) throw new Error('unexpected model outputs');
  return { freq, time, ms };
}

/** Runs a session in this thread (blocks it for each run). */
export function inProcessRunner(session: ort.InferenceSession, device: 'cpu' | 'cuda' = 'cpu'): ModelRunner {
  const names = inputNames(session);
  return { device, run: (mix, spec) => runSession(session, names, mix, spec), close: () => session.release() };
}

/** tsx as an absolute URL where it resolves from here (a process may run from any directory). */
const tsxLoader = () => {
  try {
    return import.meta.resolve('tsx');
  } catch {
    return 'tsx';
  }
};

type Reply = { id: number; freq?: Float32Array; time?: Float32Array; ms?: number; error?: string; withdrawn?: true };
type Hello = { type: 'ready'; device: 'cpu' | 'cuda'; flushesDenormals: boolean } | { type: 'log'; msg: string } | { type: 'failed'; error: string; code?: string };

/**
 * Niceness of a model's thread and of ONNX Runtime's threads it starts: the main thread preempts
 * them the moment its event loop has work, instead of waiting its turn behind them (on 2 cores
 * with two one-thread engines, three busy threads: the loop's p99 was 24 ms).
 */
export const MODEL_NICE = 10;

/**
 * Opens the model in a worker thread (the sha256 check included) and serves runs from it. A
 * worker that dies fails every run in flight and every later one with the reason.
 */
export async function workerRunner(o: Omit<SessionOptions, 'log'> & { log?: (msg: string) => void; modelPath?: string; nice?: number }): Promise<WorkerRunner> {
  const { log, ...options } = o;
  const worker = new Worker(new URL('./model-worker.ts', import.meta.url), {
    workerData: { nice: MODEL_NICE, ...options },
    // The worker loads TypeScript like the main thread does (its own loader: workers do not share
    // the main thread's --import list).
    execArgv: ['--import', tsxLoader()],
    // Its logs come through messages; stdout/stderr are the process's.
    stdout: false,
    stderr: false,
  });
  const pending = new Map<number, { resolve: (v: ModelOutputs & { ms: number }) => void; reject: (e: Error) => void }>();
  let dead: Error | undefined;
  const fail = (err: Error) => {
    dead ??= err;
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  // Runs the thread is busy with (posted, not answered), even those whose callers were failed: the
  // thread is never terminated inside a native run (onnxruntime-node aborts the whole process then).
  let busy = 0;
  let whenIdle: (() => void)[] = [];
  const idle = () => (busy === 0 ? Promise.resolve() : new Promise<void>((r) => whenIdle.push(r)));
  const settled = () => {
    busy = Math.max(0, busy - 1);
    if (busy === 0) for (const r of whenIdle.splice(0)) r();
  };
  let exitedNow!: () => void;
  const exited = new Promise<void>((r) => (exitedNow = r));
  const { device, flushesDenormals } = await new Promise<{ device: 'cpu' | 'cuda'; flushesDenormals: boolean }>((resolve, reject) => {
    worker.on('message', (m: Hello | Reply) => {
      if ('type' in m) {
        if (m.type === 'log') log?.(m.msg);
        else if (m.type === 'ready') resolve(m);
        else reject(new StemflowError(m.code ?? 'MODEL_UNAVAILABLE', m.error, { status: 500 }));
        return;
      }
      settled();
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.withdrawn) p.reject(new RunWithdrawn());
      else if (m.error !== undefined) p.reject(new Error(m.error));
      else p.resolve({ freq: m.freq!, time: m.time!, ms: m.ms! });
    });
    worker.on('error', (err) => {
      reject(err);
      fail(err);
    });
    worker.on('exit', (code) => {
      const err = new Error(`the model worker exited (${code})`);
      reject(err);
      fail(err);
      busy = 1;
      settled();
      exitedNow();
    });
  });
  /** Fails every run now, and ends the thread once its native run (if any) has returned. */
  const stop = async (why: Error) => {
    fail(why);
    await idle();
    await worker.terminate();
    await exited;
  };
  let next = 0;
  return {
    device,
    flushesDenormals,
    get dead() {
      return dead;
    },
    exited,
    // Runs are served in the order asked; one asked while another computes waits in the worker.
    queues: true,
    run: (mix, spec, signal) => {
      if (dead) return Promise.reject(dead);
      if (signal?.aborted) return Promise.reject(new RunWithdrawn());
      const id = next++;
      return new Promise<ModelOutputs & { ms: number }>((resolve, reject) => {
        // Aborted while it waits in the worker: the worker answers `withdrawn` instead of running
        // it (or, already started, with its outputs as usual).
        const withdraw = () => {
          if (pending.has(id) && !dead) worker.postMessage({ withdraw: id });
        };
        signal?.addEventListener('abort', withdraw, { once: true });
        const done = () => signal?.removeEventListener('abort', withdraw);
        pending.set(id, { resolve: (v) => (done(), resolve(v)), reject: (e) => (done(), reject(e)) });
        busy++;
        // The inputs are moved to the worker, not copied (the caller made them for this run).
        worker.postMessage({ id, mix, spec }, [mix.buffer as ArrayBuffer, spec.buffer as ArrayBuffer]);
      });
    },
    close: () => stop(new Error('the model worker was closed')),
    terminate: () => stop(new Error('the model worker was terminated')),
  };
}
