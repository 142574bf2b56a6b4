import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { blobStoreContract } from './contract.js';
import { FsBlobStore } from './fs.js';
import { safeFileName } from './names.js';

const root = mkdtempSync(join(tmpdir(), 'stemflow-fs-'));
blobStoreContract('filesystem', async () => new FsBlobStore(root), { presigns: false });

describe('filesystem store', () => {
  it('refuses keys that leave the root', async () => {
    const s = new FsBlobStore(root);
    await expect(s.put('../escape', Buffer.from('x'))).rejects.toMatchObject({ code: 'INVALID_KEY' });
    await expect(s.get('jobs/../../etc/passwd')).rejects.toMatchObject({ code: 'INVALID_KEY' });
  });
  it('leaves no empty folder: a job prefix deleted, its late write deleted, a failed write', async () => {
    const r = mkdtempSync(join(tmpdir(), 'stemflow-fs-'));
    const s = new FsBlobStore(r);
    await s.put('jobs/a/stems/vocals.wav', Buffer.from('x'));
    await s.put('jobs/a/work/live/vocals/0000000000000', Buffer.from('x'));
    await s.deletePrefix('jobs/a/');
    expect(readdirSync(r)).toEqual([]);
    // A writer that did not see the delete stores a piece, then clears its own work area only.
    await s.put('jobs/b/work/live/vocals/0000000000000', Buffer.from('x'));
    await s.deletePrefix('jobs/b/work/');
    expect(readdirSync(r)).toEqual([]);
    await s.put('jobs/c/pcm/mix.f32', Buffer.from('x'));
    await s.delete('jobs/c/pcm/mix.f32');
    expect(readdirSync(r)).toEqual([]);
    const failing = new Readable({ read() { this.destroy(new Error('source broke')); } });
    await expect(s.put('jobs/d/input/source', failing)).rejects.toThrow('source broke');
    expect(readdirSync(r)).toEqual([]);
  });
  it('a write whose folder is removed by a concurrent delete still lands', async () => {
    const r = mkdtempSync(join(tmpdir(), 'stemflow-fs-'));
    const s = new FsBlobStore(r);
    for (let i = 0; i < 1000; i++) {
      await s.put(`jobs/e/work/${i}`, Buffer.from('x'));
      const [, written] = await Promise.all([s.delete(`jobs/e/work/${i}`), s.put(`jobs/e/work/${i + 1}`, Buffer.from('y'))]);
      expect(written.bytes).toBe(1);
      expect((await s.head(`jobs/e/work/${i + 1}`))?.size).toBe(1);
    }
  });
  it('leaves no temp files behind', () => {
    const all = readdirSync(root, { recursive: true }) as string[];
    expect(all.filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});

describe('safeFileName', () => {
  it.each([
    ['../../etc/passwd', 'passwd'],
    ['..\\..\\boot.ini', 'boot.ini'],
    ['', 'upload'],
    ['..', 'upload'],
    ['.hidden.mp3', 'hidden.mp3'],
    ['Beyoncé – Halo (live).mp3', 'Beyoncé – Halo (live).mp3'],
    ['a\u0000b\nc.wav', 'abc.wav'],
    ['日本語の歌.flac', '日本語の歌.flac'],
    ['song\u202Eevil3pm.wav', 'songevil3pm.wav'],
    ['\u2066a\u2069\u200f b\ufeff.mp3', 'a b.mp3'],
  ])('%j → %j', (input, want) => expect(safeFileName(input)).toBe(want));

  it.each([
    ['100 CJK characters', '歌'.repeat(100) + '.mp3'],
    ['150 emoji', '🎵'.repeat(150) + '.flac'],
    ['family emoji (one grapheme of 25 bytes)', '👨‍👩‍👧‍👦'.repeat(20) + '.wav'],
    ['no extension', 'x'.repeat(300)],
  ])('%s: at most 255 UTF-8 bytes, cut between characters, extension kept', (_what, name) => {
    const safe = safeFileName(name);
    expect(Buffer.byteLength(safe)).toBeLessThanOrEqual(255);
    expect(Buffer.byteLength(safe)).toBeGreaterThan(200);
    expect(safe).not.toContain('\ufffd');
    expect(name.startsWith(safe.replace(/\.[a-z0-9]+$/, ''))).toBe(true);
    const ext = /\.[a-z0-9]+$/.exec(name)?.[0];
    if (ext) expect(safe.endsWith(ext)).toBe(true);
  });
});
