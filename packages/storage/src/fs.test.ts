import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { blobStoreContract } from './contract.js';
import { FsBlobStore } from './fs.js';
import { safeFileName } from './port.js';

const root = mkdtempSync(join(tmpdir(), 'stemflow-fs-'));
blobStoreContract('filesystem', async () => new FsBlobStore(root), { presigns: false });

describe('filesystem store', () => {
  it('refuses keys that leave the root', async () => {
    const s = new FsBlobStore(root);
    await expect(s.put('../escape', Buffer.from('x'))).rejects.toMatchObject({ code: 'INVALID_KEY' });
    await expect(s.get('jobs/../../etc/passwd')).rejects.toMatchObject({ code: 'INVALID_KEY' });
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
  ])('%j → %j', (input, want) => expect(safeFileName(input)).toBe(want));
});
