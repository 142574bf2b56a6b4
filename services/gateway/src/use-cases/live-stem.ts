/**
 * A stem while its job runs: the bytes the separator has stored so far (pieces named by their
 * offset in the file), then each new piece as it is stored, until the stem is complete. When the
 * job completes the pieces are removed and the rest comes from the finished file, which is the
 * same bytes. Nothing is held in memory beyond one piece; the response's pace is the client's.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { StemflowError, type Job, objectKeys, type LiveManifest } from '@stemflow/contracts';
import { readLiveManifest, type BlobStore } from '@stemflow/storage';

export type LiveDeps = {
  blobs: BlobStore;
  /** The job now (read model with this gateway's newest events); undefined once deleted. */
  job: () => Promise<Job | undefined>;
  /** Resolves at the job's next event, or after `ms`. */
  nextEvent: (ms: number) => Promise<void>;
  /** A client that takes nothing for this long is gone (its connection is cut). */
  stallMs: number;
};

/** The manifest once the separator started writing the stem; undefined if the job ended first. */
export async function waitForLiveStem(d: LiveDeps, jobId: string, stem: string, closed: () => boolean): Promise<LiveManifest | undefined> {
  for (;;) {
    const m = await readLiveManifest(d.blobs, jobId, stem);
    if (m) return m;
    const job = await d.job();
    if (!job || job.status !== 'pending' && job.status !== 'processing') return undefined;
    if (closed()) return undefined;
    await d.nextEvent(2000);
  }
}

/**
 * Writes bytes [from, to) of the stem to `out` as they become available. Resolves when they are
 * all written; rejects (the response is cut, so the client sees an incomplete file) when the job
 * fails, is canceled or deleted, or the client went away.
 */
export async function pipeLiveStem(d: LiveDeps, jobId: string, stem: string, out: Writable, from: number, to: number | undefined): Promise<void> {
  let at = from;
  const closed = () => out.destroyed || out.writableEnded;
  const write = async (chunk: Buffer) => {
    if (!out.write(chunk)) {
      // Drained, closed, or stalled: either way the listeners go (a long stream waits thousands of times).
      const ac = new AbortController();
      let stalled = false;
      const timer = setTimeout(() => ((stalled = true), ac.abort()), d.stallMs);
      await Promise.race([once(out, 'drain', { signal: ac.signal }), once(out, 'close', { signal: ac.signal })]).catch(() => {});
      clearTimeout(timer);
      ac.abort();
      if (stalled) throw new StemflowError('CLIENT_GONE', `the client took nothing for ${Math.round(d.stallMs / 1000)} s`);
    }
    if (closed()) throw new StemflowError('CLIENT_GONE', 'the client went away');
  };
  /** Streams [at, end) of an object whose byte 0 is at `base` in the stem; false if it is gone. */
  const copy = async (key: string, base: number, size: number): Promise<boolean> => {
    const end = Math.min(base + size, to ?? Number.POSITIVE_INFINITY);
    if (end <= at) return true;
    let body;
    try {
      body = await d.blobs.get(key, { start: at - base, end: end - base - 1 });
    } catch (err) {
      if ((err as { code?: string }).code === 'OBJECT_NOT_FOUND') return false;
      throw err;
    }
    for await (const c of body as AsyncIterable<Buffer>) {
      await write(c);
      at += c.length;
    }
    return true;
  };
  while (to === undefined || at < to) {
    if (closed()) throw new StemflowError('CLIENT_GONE', 'the client went away');
    let moved = false;
    const parts = await d.blobs.list(objectKeys.liveStem(jobId, stem));
    for (const p of parts) {
      const base = objectKeys.livePartOffset(p.key);
      if (base > at) break; // not there yet
      if (base + p.size <= at) continue;
      const before = at;
      if (!(await copy(p.key, base, p.size))) break; // removed meanwhile: the job just completed
      moved ||= at > before;
    }
    if (to !== undefined && at >= to) return;
    if (moved) continue;
    const job = await d.job();
    if (!job) throw new StemflowError('JOB_GONE', 'the job was deleted');
    if (job.status === 'completed') {
      const s = job.stems.find((x) => x.name === stem);
      if (!s) throw new StemflowError('STEM_NOT_FOUND', `the job has no stem "${stem}"`);
      const end = to ?? s.bytes;
      if (at < end && !(await copy(s.key, 0, s.bytes))) throw new StemflowError('STEM_GONE', 'the stem was removed');
      return;
    }
    if (job.status !== 'pending' && job.status !== 'processing') throw new StemflowError('JOB_ENDED', `the job ${job.status}`);
    await d.nextEvent(1000);
  }
}
