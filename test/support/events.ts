import { newEvent } from '@stemflow/bus';
import type { AnyEvent } from '@stemflow/contracts';

/** A whole job's life as its services publish it, in order, with increasing times. */
export function jobLifecycle(jobId: string, t0 = Date.now()): AnyEvent[] {
  const at = (s: number) => new Date(t0 + s * 1000);
  return [
    newEvent('job.created', jobId, {
      input: { key: `jobs/${jobId}/input/song.wav`, filename: 'song.wav', size: 1000, content_type: 'audio/wav', sha256: 'e'.repeat(64) },
      options: { stems: ['drums', 'bass', 'other', 'vocals'], format: 'wav16', shifts: 1, overlap: 0.25, clip: 'rescale', sample_rate: 'input', residual: false, start: 0 },
      owner: null,
    }, at(0)),
    newEvent('job.progress', jobId, { stage: 'decoding', progress: 0.02 }, at(1)),
    newEvent('job.decoded', jobId, { pcmKey: `jobs/${jobId}/pcm/mix.f32`, sampleRate: 44100, channels: 2, frames: 441000, durationSec: 10 }, at(2)),
    newEvent('job.progress', jobId, { stage: 'separating', progress: 0.4, chunk: { index: 0, count: 2 }, etaSec: 5 }, at(3)),
    newEvent('job.progress', jobId, { stage: 'separating', progress: 0.8, chunk: { index: 1, count: 2 }, etaSec: 1 }, at(4)),
    newEvent('job.completed', jobId, { stems: [{ name: 'vocals', format: 'wav16', key: `jobs/${jobId}/stems/vocals.wav`, bytes: 10 }], model: 'htdemucs', timings: { totalSec: 4 } }, at(5)),
  ];
}

export function shuffle<T>(xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}
