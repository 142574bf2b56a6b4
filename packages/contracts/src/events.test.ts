import { describe, expect, it } from 'vitest';
import { AnyEvent, EVENTS, EVENT_NAMES, type EventName } from './events.js';
import { JobOptions } from './job.js';

const jobId = '01937f5e-8d2a-7c3b-9a1e-4b2c6d8e0f12';
const base = (type: EventName) => ({
  id: '01937f5e-8d2a-7c3b-9a1e-4b2c6d8e0f13',
  type,
  version: 1,
  jobId,
  occurredAt: '2026-11-24T10:00:00.000Z',
});
const sha = 'a'.repeat(64);

const valid: Record<EventName, unknown> = {
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

const invalid: Record<EventName, unknown> = {
  'job.created': { input: { key: 'k', filename: 'x', size: -1, content_type: 'audio/mpeg', sha256: sha }, options: {} },
  'job.decoded': { pcmKey: 'k', sampleRate: 48000, channels: 2, frames: 1, durationSec: 1 },
  'job.progress': { stage: 'separating', progress: 1.5 },
  'job.completed': { stems: [], model: 'htdemucs', timings: {} },
  'job.failed': { stage: 'decoding', reason: 'x', code: 'X', retryable: true },
  'job.canceled': { extra: 1 },
};

describe('event schemas', () => {
  it.each(EVENT_NAMES)('%s accepts a valid sample and rejects an invalid one', (name) => {
    const schema = EVENTS[name];
    expect(schema.safeParse({ ...base(name), payload: valid[name] }).success).toBe(true);
    expect(schema.safeParse({ ...base(name), payload: invalid[name] }).success).toBe(false);
  });

  it('rejects a wrong version, a bad job id and a mismatched type', () => {
    const ok = { ...base('job.canceled'), payload: {} };
    expect(EVENTS['job.canceled'].safeParse({ ...ok, version: 2 }).success).toBe(false);
    expect(EVENTS['job.canceled'].safeParse({ ...ok, jobId: '../etc' }).success).toBe(false);
    expect(EVENTS['job.canceled'].safeParse({ ...ok, type: 'job.failed' }).success).toBe(false);
  });

  it('the union picks the schema by type', () => {
    const parsed = AnyEvent.parse({ ...base('job.decoded'), payload: valid['job.decoded'] });
    expect(parsed.type).toBe('job.decoded');
  });
});

describe('job options', () => {
  it('defaults every field', () => {
    expect(JobOptions.parse({})).toEqual({
      stems: ['drums', 'bass', 'other', 'vocals'],
      format: 'wav16',
      shifts: 1,
      overlap: 0.25,
      clip: 'rescale',
    });
  });
  it.each([
    [{ shifts: -1 }],
    [{ shifts: 1.5 }],
    [{ format: 'exe' }],
    [{ stems: ['guitar'] }],
    [{ stems: [] }],
    [{ stems: ['vocals', 'vocals'] }],
    [{ overlap: 0.95 }],
    [{ two_stems: 'drums' }],
    [{ unknown: true }],
  ])('rejects %j', (opts) => {
    expect(JobOptions.safeParse(opts).success).toBe(false);
  });
});
