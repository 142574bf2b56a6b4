/**
 * Hostile clients against the embedded server (`pnpm start`: one process, filesystem store,
 * in-process bus), where the decoder hands ffmpeg local paths: playlists that name another job's
 * files, uploads that stall (descriptors and temp files), a delete while stems are encoding
 * (ffmpeg processes), and a process killed mid-job and started again (the job must not stay
 * `processing` forever).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, type Dirent } from 'node:fs';
import { connect as tcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ffconcat, ffmpegFile, hlsPlaylist, id3Wrapped, toneWav } from '../support/audio.js';
import { eventually } from '../support/env.js';
import { followSse, uploadJob } from '../support/jobs-http.js';
import { ServiceProcess } from '../support/processes.js';

const port = 19_500 + (process.pid % 400);
const api = `http://127.0.0.1:${port}`;
const data = mkdtempSync(join(tmpdir(), 'embedded-abuse-'));
const env = { AMQP_URL: '', S3_ENDPOINT: '', DATABASE_URL: '', STORAGE_ROOT: data, OTEL_SDK_DISABLED: 'true', HOST: '127.0.0.1', LOG_LEVEL: 'info', HTTP_IDLE_TIMEOUT_SEC: '2', REQUEST_HEAD_TIMEOUT_SEC: '3' };
let app: ServiceProcess;

beforeAll(async () => {
  app = new ServiceProcess('all-in-one', env, port);
  await app.start();
}, 120_000);
afterAll(async () => {
  await app?.kill('SIGTERM');
});

type View = { id: string; status: string; stage: string | null; error_message: string | null; filename: string };
const getJob = async (id: string) => (await (await fetch(`${api}/api/jobs/${id}`)).json()) as View;
const ended = (id: string, timeoutMs = 120_000) =>
  eventually(async () => {
    const j = await getJob(id);
    return ['completed', 'failed', 'canceled'].includes(j.status) ? j : undefined;
  }, { timeoutMs, what: `job ${id} to end` });
const post = async (name: string, bytes: Buffer) => {
  const f = new FormData();
  f.append('file', new Blob([new Uint8Array(bytes)], { type: 'audio/mpeg' }), name);
  return fetch(`${api}/api/jobs`, { method: 'POST', body: f });
};
/** ffmpeg processes that are children of the server process. */
const ffmpegChildren = () => {
  let out = '';
  try {
    out = execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(app.proc!.pid)], { encoding: 'utf8' }).trim();
  } catch (err) {
    if ((err as { status?: number }).status !== 1) throw err; // ps exits 1 when the process has no children
  }
  return out ? out.split('\n').filter((l) => /ffmpeg|ffprobe/.test(l)).length : 0;
};
const tempFiles = () => {
  const found: string[] = [];
  const walk = (dir: string) => {
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // a folder removed with its last file as we walk
      throw err;
    }
    for (const e of entries) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (e.name.startsWith('.tmp-')) found.push(e.name);
    }
  };
  if (existsSync(join(data, 'objects'))) walk(join(data, 'objects'));
  return found;
};

describe('playlists that name other files on this disk', () => {
  let victim: string;
  beforeAll(async () => {
    const song = await ffmpegFile(['-f', 'lavfi', '-i', 'sine=frequency=660:duration=3', '-ac', '2', '-c:a', 'libmp3lame'], 'mp3');
    victim = await uploadJob(api, { name: 'victim.mp3', data: song }, { format: 'flac' });
    await ended(victim);
  });

  it.each([
    ["relative: ../../<other job>/input/source", () => hlsPlaylist(`../../${victim}/input/source`)],
    ["absolute: the other job's input on disk", () => hlsPlaylist(join(data, 'objects', 'jobs', victim, 'input', 'source'))],
    ["absolute: the other job's finished stem", () => hlsPlaylist(join(data, 'objects', 'jobs', victim, 'stems', 'vocals.flac'))],
    ['ffconcat with a file: entry', () => ffconcat(`file:${join(data, 'objects', 'jobs', victim, 'input', 'source')}`)],
  ])('an ID3-wrapped playlist, %s: the job fails, nothing of the other job is read', async (_what, text) => {
    const res = await post('evil.mp3', id3Wrapped(text()));
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const job = await ended(id);
    expect(job.status).toBe('failed');
    expect(job.error_message).toMatch(/could not be read as audio/);
    expect(existsSync(join(data, 'objects', 'jobs', id, 'pcm', 'mix.f32'))).toBe(false);
  });
});

describe('resources a request or a job takes are given back', () => {
  it('stalled uploads: 408 after the idle timeout, and their descriptors and temp files are gone at once', async () => {
    const wav = await toneWav(2);
    const fdsBefore = readdirSync(`/proc/${app.proc!.pid}/fd`).length;
    const socks = Array.from({ length: 5 }, () => {
      const s = tcp(port, '127.0.0.1');
      let response = '';
      s.on('data', (d) => (response += d.toString()));
      s.on('error', () => {});
      const head = Buffer.from('--b\r\nContent-Disposition: form-data; name="file"; filename="stall.wav"\r\nContent-Type: audio/wav\r\n\r\n');
      s.write(`POST /api/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: ${head.length + 10_000_000}\r\n\r\n`);
      s.write(Buffer.concat([head, wav.subarray(0, 48 * 1024)])); // then nothing
      return { closed: new Promise<void>((r) => s.once('close', () => r())), response: () => response };
    });
    await eventually(() => tempFiles().length === 5, { what: 'five uploads being written' });
    await Promise.all(socks.map((s) => s.closed));
    for (const s of socks) expect(s.response()).toMatch(/^HTTP\/1\.1 408/);
    await eventually(() => tempFiles().length === 0, { timeoutMs: 5000, what: `temp files removed (left: ${tempFiles().join(', ')})` });
    await eventually(() => readdirSync(`/proc/${app.proc!.pid}/fd`).length <= fdsBefore, { timeoutMs: 5000, what: 'descriptors given back' });
  });

  it('a job deleted while it runs leaves no ffmpeg process behind, and nothing on disk', async () => {
    const song = await ffmpegFile(['-f', 'lavfi', '-i', 'sine=frequency=330:duration=20', '-ac', '2', '-c:a', 'flac'], 'flac');
    const id = await uploadJob(api, { name: 'deleted.flac', data: song }, { clip: 'clamp', format: 'mp3' });
    // Delete as soon as the stems are being encoded (or whatever stage it reached by then).
    await eventually(async () => (await getJob(id)).stage === 'encoding' || (await getJob(id)).status === 'completed', { timeoutMs: 120_000, intervalMs: 20, what: 'the encoding stage' });
    expect((await fetch(`${api}/api/jobs/${id}`, { method: 'DELETE' })).status).toBe(204);
    await eventually(() => ffmpegChildren() === 0, { timeoutMs: 15_000, what: 'every ffmpeg ended' });
    await new Promise((r) => setTimeout(r, 1000));
    expect(ffmpegChildren()).toBe(0);
    const left = existsSync(join(data, 'objects', 'jobs', id)) ? execFileSync('find', [join(data, 'objects', 'jobs', id)], { encoding: 'utf8' }) : '';
    expect(left).toBe('');
  });

  it('killed mid-job (SIGKILL) and started again: the job resumes and completes', async () => {
    const song = await ffmpegFile(['-f', 'lavfi', '-i', 'sine=frequency=220:duration=20', '-ac', '2', '-c:a', 'flac'], 'flac');
    const id = await uploadJob(api, { name: 'killed.flac', data: song }, { format: 'wav24' });
    await eventually(async () => (await getJob(id)).stage === 'separating', { timeoutMs: 60_000, intervalMs: 50, what: 'separating' });
    await app.kill('SIGKILL');
    app = new ServiceProcess('all-in-one', env, port);
    await app.start();
    expect(app.log).toContain('resuming jobs left in flight by the last run');
    const events = await followSse(api, id);
    expect(events.at(-1)?.event).toBe('completed');
    const stems = readdirSync(join(data, 'objects', 'jobs', id, 'stems'));
    expect(stems.sort()).toEqual(['bass.wav', 'drums.wav', 'other.wav', 'vocals.wav']);
    expect(readFileSync(join(data, 'objects', 'jobs', id, 'stems', 'vocals.wav')).length).toBeGreaterThan(20 * 44100 * 6);
  });

  it('a server on a machine without ffmpeg stops at once, saying what is missing', async () => {
    const bare = new ServiceProcess('all-in-one', { ...env, PATH: join(process.execPath, '..') }, port + 1);
    await expect(bare.start()).rejects.toThrow(/ffmpeg and ffprobe are not installed or not on PATH/);
    expect(bare.proc!.exitCode).toBe(1);
  });
});
