/**
 * `stemflow separate`: the whole pipeline in the CLI's own process, no servers, the real model.
 */
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { decodedFrames, mixtureWav } from '../support/jobs-http.js';

let dir: string;
let frames: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cli-'));
  const song = await mixtureWav(20);
  frames = song.frames;
  writeFileSync(join(dir, 'my song.wav'), song.wav);
  writeFileSync(join(dir, 'short.wav'), (await mixtureWav(8)).wav);
}, 60_000);

describe('stemflow separate (in-process, no servers)', () => {
  it('writes four stems of the input length under ./separated/<name>/ and prints their paths', async () => {
    const r = await runCli(['separate', 'my song.wav'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const out = join(dir, 'separated', 'my song');
    expect(r.stdout.trim().split('\n')).toEqual(['drums', 'bass', 'other', 'vocals'].map((s) => join(out, `${s}.wav`)));
    expect(r.stderr).toMatch(/^separating my song\.wav on the CPU\n/);
    expect(r.stderr).toMatch(/separating \d+%/);
    expect(r.stderr).toMatch(/completed 100%/);
    for (const f of readdirSync(out)) expect(decodedFrames(readFileSync(join(out, f))), f).toBe(frames);
    expect(readdirSync(out).some((f) => f.endsWith('.part'))).toBe(false);
  });

  it('--two-stems vocals --format mp3 --out writes vocals and accompaniment', async () => {
    const out = join(dir, 'two');
    const r = await runCli(['separate', 'short.wav', '--two-stems', 'vocals', '--format', 'mp3', '--out', out, '--quiet'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['accompaniment.mp3', 'vocals.mp3']);
    expect(r.stderr).toBe(''); // --quiet
  });

  it('a usage error → exit 2 with a sentence (every case: services/cli/src/index.test.ts)', async () => {
    const r = await runCli(['separate', 'my song.wav', '--format', 'exe'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--format: .*wav16/);
  });

  it('a file that is not audio: exit 1 with the reason, before the model loads', async () => {
    writeFileSync(join(dir, 'notes.mp3'), 'plain text pretending to be an mp3\n'.repeat(40));
    const r = await runCli(['separate', 'notes.mp3'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/stemflow: the file is not audio/);
    expect(r.stderr).not.toMatch(/CUDA|model loaded/);
  });

  it('--help prints the usage, exit 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('stemflow separate <file>');
    expect(r.stdout).toContain('stemflow submit <file> --api <url>');
  });
});
