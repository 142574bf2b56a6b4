import { describe, expect, it } from 'vitest';
import { ConfigError, envNames, parseConfig } from './index.js';

describe('config', () => {
  it('gives embedded defaults for an empty environment', () => {
    const c = parseConfig('gateway', {});
    expect(c).toMatchObject({ PORT: 8000, STORAGE_ROOT: './data', S3_BUCKET: 'stemflow' });
    expect(c.AMQP_URL).toBeUndefined();
    expect(c.DATABASE_URL).toBeUndefined();
  });

  it('names the variable and the problem in one line', () => {
    expect(() => parseConfig('decoder', { AMQP_URL: 'nonsense' })).toThrow(ConfigError);
    expect(() => parseConfig('decoder', { AMQP_URL: 'nonsense' })).toThrow(
      'invalid decoder configuration: AMQP_URL="nonsense": must be a URL starting with amqp:// or amqps://',
    );
  });

  it('reports every bad variable and hides secrets', () => {
    let msg = '';
    try {
      parseConfig('gateway', { PORT: 'eighty', S3_SECRET_KEY: '', DATABASE_URL: 'postgres://u:pw@x/db' });
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain('PORT="eighty"');
    expect(msg).toContain('DATABASE_URL="postgres://***@x/db"');
    expect(msg).not.toContain('pw');
    expect(msg.split('\n')).toHaveLength(1);
  });

  it('parses API keys and the separator device', () => {
    expect(parseConfig('gateway', { API_KEYS: 'a, b' }).API_KEYS).toEqual(['a', 'b']);
    expect(parseConfig('separator', { SEPARATOR_DEVICE: 'cuda' }).SEPARATOR_DEVICE).toBe('cuda');
    expect(() => parseConfig('separator', { SEPARATOR_DEVICE: 'tpu' })).toThrow(/SEPARATOR_DEVICE/);
  });

  it.each([
    [',', /empty key/],
    ['  ,  ', /empty key/],
    ['a,,b', /empty key/],
    ['a,b,', /empty key/],
    ['clé', /only ASCII letters/],
    ['has space', /only ASCII letters/],
    ['a,a', /twice/],
  ])('refuses API_KEYS=%j with one line (authentication must never turn off by accident)', (value, why) => {
    expect(() => parseConfig('gateway', { API_KEYS: value })).toThrow(why);
    try {
      parseConfig('gateway', { API_KEYS: value });
    } catch (err) {
      expect((err as Error).message.split('\n')).toHaveLength(1);
      if (value.trim().length > 1) expect((err as Error).message).not.toContain(value.trim()); // the keys are secrets
    }
  });

  it('lists the variables each service reads', () => {
    expect(envNames('separator')).toContain('SEPARATOR_THREADS');
    expect(envNames('gateway')).toContain('MAX_UPLOAD_BYTES');
    expect(envNames('decoder')).not.toContain('MAX_UPLOAD_BYTES');
  });
});
