/**
 * pnpm bench render — the gateway's renders of a 3-minute and a 60-minute stem (wav16, generated),
 * each in its own process: waveform peaks (every zoom level, one decode) and a mixdown of four
 * stems, their time as a share of the song (and of its separation, at the separator's measured
 * real-time factor), and peak RSS (flat: the stem is streamed, never held whole).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Separation wall time ÷ song duration on this machine's CPU (docs/benchmarks.md: pnpm bench separate). */
const SEPARATION_RTF = 0.72;
const mode = process.argv.find((a) => a.startsWith('--child='))?.slice(8);

async function child(minutes: number) {
  const { computePeaks, renderMix } = await import('@stemflow/audio');
  const root = mkdtempSync(join(tmpdir(), 'render-bench-'));
  mkdirSync(root, { recursive: true });
  const stems = ['drums', 'bass', 'other', 'vocals'].map((n, i) => {
    const file = join(root, `${n}.wav`);
    const gen = spawnSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `sine=frequency=${110 * (i + 1)}:sample_rate=44100:duration=${minutes * 60}`, '-ac', '2', '-c:a', 'pcm_s16le', '-y', file]);
    if (gen.status !== 0) throw new Error(gen.stderr.toString());
    return { location: file, media: { demuxer: 'wav', demuxerOptions: [] } };
  });
  const rss0 = process.memoryUsage().rss;
  let t0 = performance.now();
  const levels = await computePeaks(stems[0]!, { maxSec: minutes * 60 + 5 });
  const peaksSec = (performance.now() - t0) / 1000;
  const peaksRss = process.resourceUsage().maxRSS / 1024;
  t0 = performance.now();
  const out = join(root, 'mix.wav');
  await renderMix(stems.map((src) => ({ src, gain: 1 })), 'wav16', out);
  const mixSec = (performance.now() - t0) / 1000;
  const result = { minutes, peaksSec, mixSec, peakRssMiB: peaksRss, baseRssMiB: rss0 / 2 ** 20, finest: levels.get(256)!.length, mixBytes: statSync(out).size };
  rmSync(root, { recursive: true, force: true });
  process.stdout.write(JSON.stringify(result) + '\n');
}

if (mode) {
  await child(Number(mode));
} else {
  const run = (m: number) => {
    const out = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), `--child=${m}`], { encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'silent' }, maxBuffer: 1 << 24 });
    if (out.status !== 0) throw new Error(out.stderr);
    return JSON.parse(out.stdout.trim().split('\n').pop()!) as { minutes: number; peaksSec: number; mixSec: number; peakRssMiB: number; baseRssMiB: number; finest: number };
  };
  const short = run(3);
  const long = run(60);
  for (const r of [short, long]) {
    const song = r.minutes * 60;
    console.log(
      `${String(r.minutes).padStart(2)} min stem: peaks (7 levels, ${r.finest} blocks at the finest) ${r.peaksSec.toFixed(1)} s = ${((100 * r.peaksSec) / song).toFixed(2)} % of the song, ${((100 * r.peaksSec) / (song * SEPARATION_RTF)).toFixed(2)} % of its separation; ` +
        `mix of 4 stems ${r.mixSec.toFixed(1)} s (${((100 * r.mixSec) / (song * SEPARATION_RTF)).toFixed(2)} % of its separation); peak RSS ${r.peakRssMiB.toFixed(0)} MiB (${r.baseRssMiB.toFixed(0)} before)`,
    );
  }
  console.log(`peak RSS 60 min / 3 min: ${(long.peakRssMiB / short.peakRssMiB).toFixed(2)} (flat = 1, but for the peaks arrays: 8 bytes per block)`);
}
