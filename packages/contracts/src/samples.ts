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
    input: { key: `jobs/${jobId}/input/source`, filename: 'song.mp3', size: 1234567, content_type: 'audio/mpeg', sha256: sha },
    options: { stems: ['drums', 'bass', 'other', 'vocals'], format: 'wav16', shifts: 1, overlap: 0.25, clip: 'rescale' },
    owner: null,
  },
  'job.imported': { input: { key: `jobs/${jobId}/input/song.flac`, filename: 'song.flac', size: 2345678, content_type: 'audio/flac', sha256: sha, url: 'https://media.example.com/songs/song.flac?…' } },
  'job.decoded': { options: { stems: ['drums', 'bass', 'other', 'vocals'], format: 'wav16', shifts: 1, overlap: 0.25, clip: 'rescale' }, pcmKey: `jobs/${jobId}/pcm/mix.f32`, sampleRate: 44100, channels: 2, frames: 441000, durationSec: 10 },
  'job.progress': { stage: 'separating', progress: 0.475, chunk: { index: 0, count: 2 }, etaSec: 5.6 },
  'job.completed': {
    stems: [
      { name: 'drums', format: 'wav16', key: `jobs/${jobId}/stems/drums.wav`, bytes: 1764044, sha256: 'd'.repeat(64) },
      { name: 'bass', format: 'wav16', key: `jobs/${jobId}/stems/bass.wav`, bytes: 1764044, sha256: 'b'.repeat(64) },
      { name: 'other', format: 'wav16', key: `jobs/${jobId}/stems/other.wav`, bytes: 1764044, sha256: 'c'.repeat(64) },
      { name: 'vocals', format: 'wav16', key: `jobs/${jobId}/stems/vocals.wav`, bytes: 1764044, sha256: 'e'.repeat(64) },
    ],
    model: 'htdemucs',
    timings: { separateSec: 7.41, encodeSec: 0.38, wallSec: 7.79, modelRunSec: 7.2, realtimeFactor: 0.741, chunks: 2 },
    durationSec: 10,
    sampleRate: 44100,
    channels: 2,
  },
  'job.failed': { stage: 'decoding', reason: 'The file is not audio.', code: 'NOT_AUDIO', retryable: false },
  'job.canceled': {},
  'job.webhook': { outcome: 'delivered', event: 'job.completed', webhookId: '01937f5e-8d2a-7c3b-9a1e-4b2c6d8e0f99', url: 'https://hooks.example.com/stemflow', attempts: 1, status: 200 },
};

export const invalid: Record<EventName, unknown> = {
  'job.created': { input: { key: 'k', filename: 'x', size: -1, content_type: 'audio/mpeg', sha256: sha }, options: {} },
  'job.imported': { input: { key: 'k', filename: 'x', size: 1, content_type: 'audio/flac' } },
  'job.decoded': { pcmKey: 'k', sampleRate: 48000, channels: 2, frames: 1, durationSec: 1 },
  'job.progress': { stage: 'separating', progress: 1.5 },
  'job.completed': { stems: [], model: 'htdemucs', timings: {} },
  'job.failed': { stage: 'decoding', reason: 'x', code: 'X', retryable: true },
  'job.canceled': { extra: 1 },
  'job.webhook': { outcome: 'maybe', event: 'job.completed', webhookId: 'x', url: 'u', attempts: 0 },
};

/** A whole valid event of a type. */
export const sampleEvent = (name: EventName) => ({ ...base(name), payload: valid[name] });
