/**
 * pnpm bench decode — the decoder on a 3-minute and a 60-minute input (FLAC, generated), each in
 * its own process: decode speed as a multiple of real time and peak RSS (memory must stay flat).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const mode = process.argv.find((a) => a.startsWith('--child='))?.slice(8);

async function child(minutes: number) {
  const { InMemoryBus, newEvent } = await import('@stemflow/bus');
  const { FsBlobStore } = await import('@stemflow/storage');
  const { objectKeys } = await import('@stemflow/contracts');
  const { decodeJob } = await import('@stemflow/decoder');
  const { createLogger } = await import('@stemflow/telemetry');
  const root = mkdtempSync(join(tmpdir(), 'dec-bench-'));
  const blobs = new FsBlobStore(root);
  const id = '01937f5e-8d2a-7c3b-9a1e-4b2c6d8e0f12';
  const key = objectKeys.input(id);
  // The input is written by ffmpeg straight into the store's directory.
  const file = join(root, key);
  spawnSync('mkdir', ['-p', join(root, `jobs/${id}/input`)]);
  const gen = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${minutes * 60}`, '-ac', '2', '-c:a', 'flac', '-y', file]);
  if (gen.status !== 0) throw new Error(gen.stderr.toString());
  const t0 = performance.now();
  await decodeJob({ bus: new InMemoryBus({ queues: [] }), blobs, log: createLogger('bench', 'silent'), cancels: { seen: () => false, isCanceled: async () => false, close: async () => {} } }, newEvent('job.created', id, { input: { key, filename: 'long.flac', size: 1, content_type: 'audio/flac', sha256: 'a'.repeat(64) }, options: { stems: ['vocals'], format: 'wav16', shifts: 1, overlap: 0.25, clip: 'rescale', sample_rate: 'input', residual: false, start: 0 }, owner: null }), { maxDurationSec: 2 * 3600 });
  const sec = (performance.now() - t0) / 1000;
  process.stdout.write(JSON.stringify({ minutes, sec, peakRssMiB: process.resourceUsage().maxRSS / 1024, pcmBytes: (await blobs.head(objectKeys.pcm(id)))?.size }) + '\n');
}

if (mode) {
  await child(Number(mode));
} else {
  const run = (m: number) => {
    const out = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), `--child=${m}`], { encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'silent' } });
    if (out.status !== 0) throw new Error(out.stderr);
    return JSON.parse(out.stdout.trim().split('\n').pop()!) as { minutes: number; sec: number; peakRssMiB: number; pcmBytes: number };
  };
  const short = run(3);
  const long = run(60);
  for (const r of [short, long]) {
    console.log(`${String(r.minutes).padStart(2)} min 48 kHz FLAC → 44.1 kHz f32 PCM: ${r.sec.toFixed(1)} s (${((r.minutes * 60) / r.sec).toFixed(0)}x real time), peak RSS ${r.peakRssMiB.toFixed(0)} MiB, ${(r.pcmBytes / 2 ** 20).toFixed(0)} MiB of PCM`);
  }
  console.log(`peak RSS 60 min / 3 min: ${(long.peakRssMiB / short.peakRssMiB).toFixed(2)} (flat = 1)`);
}
