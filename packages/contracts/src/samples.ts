/** One valid and one invalid sample of every event (tests of the schemas and of the AsyncAPI document). */
import type { EventName } from './events.js';

const jobId = '01937f5e-8d2a-7c3b-9a1e-4b2c6d8e0f12';
export const base = (type: EventName) => ({
  id: '01937f5e-8d2a-7c3b-9a1e-4b2c6d8e0f13',
  type,
  version: 1,
  jobId,
  occurredAt: '2026-11-24T10:00:00.000Z',
});
const sha = 'a'.repeat(64);

export const valid: Record<EventName, unknown> = {
  'job.created': {
    input: { key: `jobs/${jobId}/input/song.mp3`, filename: 'song.mp3', size: 1234, content_type: 'audio/mpeg', sha256: sha },
    options: {},
  },
  'job.decoded': { pcmKey: `jobs/${jobId}/pcm/mix.f32`, sampleRate: 44100, channels: 2, frames: 441000, durationSec: 10 },
  'job.progress': { stage: 'separating', progress: 0.5, chunk: { index: 2, count: 5 }, etaSec: 12 },
  'job.completed': {
    stems: [{ name: 'vocals', format: 'wav16', key: `jobs/${jobId}/stems/vocals.wav`, bytes: 100 }],
    model: 'htdemucs',
    timings: { separateSec: 12.5 },
  },
  'job.failed': { stage: 'decoding', reason: 'The file is not audio.', code: 'NOT_AUDIO', retryable: false },
  'job.canceled': {},
};

export const invalid: Record<EventName, unknown> = {
  'job.created': { input: { key: 'k', filename: 'x', size: -1, content_type: 'audio/mpeg', sha256: sha }, options: {} },
  'job.decoded': { pcmKey: 'k', sampleRate: 48000, channels: 2, frames: 1, durationSec: 1 },
  'job.progress': { stage: 'separating', progress: 1.5 },
  'job.completed': { stems: [], model: 'htdemucs', timings: {} },
  'job.failed': { stage: 'decoding', reason: 'x', code: 'X', retryable: true },
  'job.canceled': { extra: 1 },
};

/** A whole valid event of a type. */
export const sampleEvent = (name: EventName) => ({ ...base(name), payload: valid[name] });
