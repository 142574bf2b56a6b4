/** One behaviour suite for every BlobStore adapter (filesystem here, S3 in test/). */
import { Readable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { BlobStore } from './port.js';

export const readAll = async (r: Readable): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
};

export function blobStoreContract(name: string, make: () => Promise<BlobStore>, opts: { presigns: boolean }) {
  describe(`BlobStore contract: ${name}`, () => {
    const prefix = () => `jobs/${randomUUID()}/`;

    it('puts a stream, reads it whole and by ranges, and heads it', async () => {
      const s = await make();
      const p = prefix();
      const data = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 251));
      const { bytes } = await s.put(`${p}input/a.bin`, Readable.from([data.subarray(0, 40_000), data.subarray(40_000)]), { contentType: 'audio/wav' });
      expect(bytes).toBe(100_000);
      expect((await s.head(`${p}input/a.bin`))?.size).toBe(100_000);
      expect(await readAll(await s.get(`${p}input/a.bin`))).toEqual(data);
      expect(await readAll(await s.get(`${p}input/a.bin`, { start: 10, end: 19 }))).toEqual(data.subarray(10, 20));
      expect(await readAll(await s.get(`${p}input/a.bin`, { start: 99_990 }))).toEqual(data.subarray(99_990));
      await s.deletePrefix(p);
    });

    it('puts a stream that ends before its first byte as an empty object', async () => {
      const s = await make();
      const p = prefix();
      expect(await s.put(`${p}pcm/empty.f32`, Readable.from([]))).toEqual({ bytes: 0 });
      expect((await s.head(`${p}pcm/empty.f32`))?.size).toBe(0);
      expect((await readAll(await s.get(`${p}pcm/empty.f32`))).length).toBe(0);
      await s.deletePrefix(p);
    });

    it('reports a missing object as OBJECT_NOT_FOUND and head as undefined', async () => {
      const s = await make();
      await expect(s.get(`${prefix()}nope`)).rejects.toMatchObject({ code: 'OBJECT_NOT_FOUND', status: 404 });
      expect(await s.head(`${prefix()}nope`)).toBeUndefined();
    });

    it('lists and deletes by prefix, and leaves other jobs alone', async () => {
      const s = await make();
      const a = prefix();
      const b = prefix();
      await s.put(`${a}stems/vocals.wav`, Buffer.from('v'));
      await s.put(`${a}stems/drums.wav`, Buffer.from('dd'));
      await s.put(`${b}stems/bass.wav`, Buffer.from('bbb'));
      expect((await s.list(a)).map((x) => [x.key.slice(a.length), x.size])).toEqual([
        ['stems/drums.wav', 2],
        ['stems/vocals.wav', 1],
      ]);
      expect(await s.deletePrefix(a)).toBe(2);
      expect(await s.list(a)).toEqual([]);
      expect((await s.list(b)).length).toBe(1);
      await s.deletePrefix(b);
    });

    it('leaves no object when the source stream fails mid-way', async () => {
      const s = await make();
      const p = prefix();
      const failing = new Readable({
        read() {
          this.push(Buffer.alloc(64 * 1024, 1));
          this.destroy(new Error('client went away'));
        },
      });
      await expect(s.put(`${p}input/broken.wav`, failing)).rejects.toThrow();
      expect(await s.head(`${p}input/broken.wav`)).toBeUndefined();
      expect(await s.list(p)).toEqual([]);
    });

    it('abortStaleWrites discards a write left unfinished (a writer that died mid-upload), and only older ones', async () => {
      const s = await make();
      const p = prefix();
      // A writer that stops sending after 20 MiB (over one S3 multipart part): it never finishes.
      let stalled!: () => void;
      const reachedStall = new Promise<void>((r) => (stalled = r));
      const body = new Readable({ read() {} });
      const part = Buffer.alloc(4 << 20, 7);
      for (let i = 0; i < 5; i++) body.push(part);
      const put = s.put(`${p}input/big.bin`, body).then(() => 'finished', () => 'failed');
      setTimeout(stalled, 1500);
      await reachedStall;
      expect(await s.abortStaleWrites(p, new Date(Date.now() - 60_000))).toBe(0); // too young to be stale
      expect(await s.abortStaleWrites(p, new Date(Date.now() + 1000))).toBe(1);
      expect(await s.abortStaleWrites(p, new Date(Date.now() + 1000))).toBe(0);
      body.push(null);
      expect(await put).toBe('failed'); // its writer, were it alive, learns the write is gone
      expect(await s.list(p)).toEqual([]);
    });

    it('lists objects with their last write time', async () => {
      const s = await make();
      const p = prefix();
      const before = Date.now() - 5_000;
      await s.put(`${p}a`, Buffer.from('x'));
      const [info] = await s.list(p);
      expect(info?.modified?.getTime()).toBeGreaterThan(before);
      await s.deletePrefix(p);
    });

    it('replaces an object atomically', async () => {
      const s = await make();
      const p = prefix();
      await s.put(`${p}x`, Buffer.from('old'));
      await s.put(`${p}x`, Buffer.from('new!'));
      expect((await readAll(await s.get(`${p}x`))).toString()).toBe('new!');
      await s.deletePrefix(p);
    });

    it(opts.presigns ? 'presigns a GET that works without credentials' : 'has no presigned URLs', async () => {
      const s = await make();
      const p = prefix();
      await s.put(`${p}stems/vocals.wav`, Buffer.from('RIFF'));
      const url = await s.presignGet(`${p}stems/vocals.wav`, 60, 'my song – vocals.wav');
      if (!opts.presigns) {
        expect(url).toBeUndefined();
      } else {
        const res = await fetch(url!);
        expect(res.status).toBe(200);
        expect(await res.text()).toBe('RIFF');
      }
      await s.deletePrefix(p);
    });
  });
}
