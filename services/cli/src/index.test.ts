import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { jobOptions, main } from './index.js';

async function run(args: string[]) {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d: Buffer) => (stdout += d.toString()));
  err.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await main(args, { stdout: out, stderr: err });
  return { code, stdout, stderr };
}

const song = join(mkdtempSync(join(tmpdir(), 'cli-unit-')), 'song.wav');
writeFileSync(song, 'RIFF');

describe('stemflow command line', () => {
  it('separate on a machine without ffmpeg: one line saying what is missing and how to get it, exit 1', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      const r = await run(['separate', song]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^stemflow: ffmpeg and ffprobe are not installed or not on PATH: install ffmpeg \(Debian\/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg\)/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      process.env.PATH = path;
    }
  });

  it.each([
    [['separate'], /which file\?/],
    [['separate', '/nowhere/missing.wav'], /no such file: \/nowhere\/missing\.wav/],
    [['separate', song, '--format', 'exe'], /--format: .*"wav16"\|"wav24"\|"f32"\|"flac"\|"mp3"/],
    [['separate', song, '--stems', 'drums,kazoo'], /--stems: /],
    [['separate', song, '--stems', 'drums,drums'], /--stems: stems must not repeat/],
    [['separate', song, '--two-stems', 'drums'], /--two-stems: /],
    [['separate', song, '--shifts=-1'], /--shifts: .*>=1/],
    [['separate', song, '--overlap', '0.95'], /--overlap: .*<=0\.9/],
    [['separate', song, '--clip', 'fold'], /--clip: /],
    [['separate', song, '--device', 'tpu'], /--device must be auto, cpu or cuda/],
    [['separate', song, '--threads', 'many'], /--threads must be a whole number/],
    [['separate', song, '--bogus'], /Unknown option '--bogus'/],
    [['separate', song, 'other.wav'], /one file at a time/],
    [['submit', song, '--api', 'ftp://example'], /--api must be an http\(s\) URL/],
    [['submit'], /which file\? \(stemflow submit <file>, or --url <url>\)/],
    [['submit', '--url', 'ftp://example/song.mp3'], /--url must be an http\(s\) URL/],
    [['submit', song, '--url', 'https://example.com/song.mp3'], /a file or --url, not both/],
    [['submit', song, '--callback-url', 'hooks.example.com'], /--callback-url must be an http\(s\) URL/],
    [['submit', song, '--idempotency-key', 'é'], /--idempotency-key must be 1 to 255 visible ASCII characters/],
    [['separate', song, '--callback-url', 'https://example.com/h'], /--callback-url is for submit/],
    [['transmogrify', song], /unknown command "transmogrify"/],
  ])('%j → exit 2 with a sentence and a pointer to --help', async (args, message) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toContain('Run "stemflow --help" for the options.');
  });

  it('no arguments prints the usage with exit 2; --help with exit 0', async () => {
    expect((await run([])).code).toBe(2);
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('stemflow separate <file> [options]');
  });

  it('submit to a server that is not there: exit 1, says which', async () => {
    const r = await run(['submit', song, '--api', 'http://127.0.0.1:9', '--quiet']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^stemflow: cannot reach http:\/\/127\.0\.0\.1:9: /);
  });

  it('flags become the same job options the API takes', () => {
    expect(jobOptions({ stems: 'vocals, drums', format: 'flac', shifts: '2', overlap: '0.5', clip: 'clamp' })).toEqual({
      stems: ['vocals', 'drums'],
      format: 'flac',
      shifts: 2,
      overlap: 0.5,
      clip: 'clamp',
      sample_rate: 'input',
      residual: false,
      start: 0,
    });
    expect(jobOptions({ 'sample-rate': '44100', residual: true, start: '60', duration: '30', stems: 'other,vocals' })).toMatchObject({ sample_rate: '44100', residual: true, start: 60, duration: 30 });
    expect(() => jobOptions({ start: 'soon' })).toThrow(/--start/);
    expect(() => jobOptions({ residual: true, stems: 'vocals' })).toThrow(/--residual: .*include other/);
    expect(jobOptions({ 'two-stems': 'vocals' })).toMatchObject({ two_stems: 'vocals', stems: ['drums', 'bass', 'other', 'vocals'], format: 'wav16' });
  });
});
