import { describe, expect, it } from 'vitest';
import { SERVICES } from '@stemflow/all-in-one/config';
import { ConfigError, envNames, parseConfig } from '@stemflow/config';

describe('config', () => {
  it('gives embedded defaults for an empty environment', () => {
    const c = parseConfig(SERVICES['gateway'], {});
    expect(c).toMatchObject({ PORT: 8000, STORAGE_ROOT: './data', S3_BUCKET: 'stemflow' });
    expect(c.AMQP_URL).toBeUndefined();
    expect(c.DATABASE_URL).toBeUndefined();
  });

  it('names the variable and the problem in one line', () => {
    expect(() => parseConfig(SERVICES['decoder'], { AMQP_URL: 'nonsense' })).toThrow(ConfigError);
    expect(() => parseConfig(SERVICES['decoder'], { AMQP_URL: 'nonsense' })).toThrow(
      'invalid decoder configuration: AMQP_URL="nonsense": must be a URL starting with amqp:// or amqps://',
    );
  });

  it('reports every bad variable and hides secrets', () => {
    let msg = '';
    try {
      parseConfig(SERVICES['gateway'], { PORT: 'eighty', S3_SECRET_KEY: '', DATABASE_URL: 'postgres://u:pw@x/db' });
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain('PORT="eighty"');
    expect(msg).toContain('DATABASE_URL="postgres://***@x/db"');
    expect(msg).not.toContain('pw');
    expect(msg.split('\n')).toHaveLength(1);
  });

  it('parses per-key settings, and refuses what cannot work', () => {
    const secret = 'x'.repeat(32);
    const c = parseConfig(SERVICES['gateway'], { API_KEYS: 'k1,k2', WEBHOOK_SECRET: secret, API_KEY_SETTINGS: '{"*": {"requests_per_sec": 5}, "k2": {"webhook_url": "https://h.example.com/x", "max_concurrent_jobs": 2}}', OUTBOUND_ALLOW_CIDRS: '10.0.0.0/8, ::1' });
    expect(c.API_KEY_SETTINGS).toEqual({ '*': { requests_per_sec: 5 }, k2: { webhook_url: 'https://h.example.com/x', max_concurrent_jobs: 2 } });
    expect(c.OUTBOUND_ALLOW_CIDRS).toEqual(['10.0.0.0/8', '::1']);
    expect(() => parseConfig(SERVICES['gateway'], { API_KEY_SETTINGS: '{nope' })).toThrow(/API_KEY_SETTINGS="\*\*\*": must be a JSON object/);
    expect(() => parseConfig(SERVICES['gateway'], { API_KEY_SETTINGS: '{"*": {"max_concurrent_jobs": 0}}' })).toThrow(/API_KEY_SETTINGS/);
    expect(() => parseConfig(SERVICES['gateway'], { API_KEY_SETTINGS: '{"*": {"burst": 3}}' })).toThrow(/API_KEY_SETTINGS/);
    expect(() => parseConfig(SERVICES['gateway'], { API_KEYS: 'k1', API_KEY_SETTINGS: '{"k9": {"requests_per_sec": 1}}' })).toThrow(/names 1 key\(s\) that API_KEYS does not list/);
    expect(() => parseConfig(SERVICES['gateway'], { API_KEY_SETTINGS: '{"*": {"webhook_url": "https://h.example.com"}}' })).toThrow(/webhook_url but WEBHOOK_SECRET is not set/);
    expect(() => parseConfig(SERVICES['gateway'], { WEBHOOK_SECRET: 'short' })).toThrow(/WEBHOOK_SECRET="\*\*\*": must be at least 32 characters/);
    expect(() => parseConfig(SERVICES['webhooks'], { OUTBOUND_ALLOW_CIDRS: '10.0.0.0/33' })).toThrow(/"10.0.0.0\/33" is not an address or a network/);
    expect(() => parseConfig(SERVICES['webhooks'], { OUTBOUND_ALLOW_CIDRS: 'intranet' })).toThrow(/OUTBOUND_ALLOW_CIDRS/);
  });

  it('parses API keys and the separator device', () => {
    expect(parseConfig(SERVICES['gateway'], { API_KEYS: 'a, b' }).API_KEYS).toEqual(['a', 'b']);
    expect(parseConfig(SERVICES['separator'], { SEPARATOR_DEVICE: 'cuda' }).SEPARATOR_DEVICE).toBe('cuda');
    expect(() => parseConfig(SERVICES['separator'], { SEPARATOR_DEVICE: 'tpu' })).toThrow(/SEPARATOR_DEVICE/);
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
    expect(() => parseConfig(SERVICES['gateway'], { API_KEYS: value })).toThrow(why);
    try {
      parseConfig(SERVICES['gateway'], { API_KEYS: value });
    } catch (err) {
      expect((err as Error).message.split('\n')).toHaveLength(1);
      if (value.trim().length > 1) expect((err as Error).message).not.toContain(value.trim()); // the keys are secrets
    }
  });

  it('lists the variables each service reads', () => {
    expect(envNames(SERVICES['separator'])).toContain('SEPARATOR_THREADS');
    expect(envNames(SERVICES['gateway'])).toContain('MAX_UPLOAD_BYTES');
    expect(envNames(SERVICES['decoder'])).toEqual(expect.arrayContaining(['MAX_UPLOAD_BYTES', 'IMPORT_TIMEOUT_SEC', 'OUTBOUND_ALLOW_CIDRS'])); // it imports inputs given by URL
    expect(envNames(SERVICES['decoder'])).not.toContain('WEBHOOK_SECRET');
    expect(envNames(SERVICES['gateway'])).not.toContain('IMPORT_TIMEOUT_SEC');
  });
});
