import { describe, expect, it } from 'vitest';
import { AnyEvent, EVENTS, EVENT_NAMES } from './events.js';
import { base, invalid, valid } from './samples.js';
import { JobOptions, fieldsFromOptions, optionsFromFields } from './job.js';

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
      sample_rate: 'input',
      residual: false,
      start: 0,
    });
  });

  it('the residual needs a stem to go into', () => {
    expect(JobOptions.safeParse({ residual: true, stems: ['vocals', 'drums'] }).success).toBe(false);
    expect(JobOptions.safeParse({ residual: true, stems: ['vocals', 'other'] }).success).toBe(true);
    expect(JobOptions.safeParse({ residual: true, stems: ['drums'], two_stems: 'vocals' }).success).toBe(true);
  });

  it('options survive the trip through text fields (a form, flags) and back', () => {
    const o = JobOptions.parse({ stems: ['vocals', 'other'], format: 'wav', shifts: 2, overlap: 0.5, clip: 'clamp', sample_rate: '44100', residual: true, start: 60, duration: 30 });
    expect(JobOptions.parse(optionsFromFields(fieldsFromOptions(o)))).toEqual(o);
    expect(optionsFromFields({ residual: 'yes', start: '' })).toEqual({ residual: true, start: Number.NaN });
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
