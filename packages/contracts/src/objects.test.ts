import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CompletedMarker, ImportTarget, JOBS_PREFIX, LiveManifest, PcmManifest, WebhookTarget, objectKeys } from './objects.js';

describe('the object layout', () => {
  const id = randomUUID();
  const every = [
    objectKeys.input(id), objectKeys.importSource(id), objectKeys.created(id), objectKeys.webhook(id), objectKeys.canceled(id),
    objectKeys.pcm(id), objectKeys.pcmManifest(id), objectKeys.nativePcm(id), objectKeys.plan(id), objectKeys.checkpoint(id, 1, 7),
    objectKeys.liveManifest(id, 'vocals'), objectKeys.livePart(id, 'vocals', 4096), objectKeys.stem(id, 'vocals', 'wav'),
    objectKeys.completed(id), objectKeys.peaks(id, 'vocals', 1024), objectKeys.mix(id, 'abc', 'flac'),
  ];

  it('puts every object of a job under its prefix, so deleting the prefix deletes the job', () => {
    for (const key of every) {
      expect(key.startsWith(objectKeys.job(id)), key).toBe(true);
      expect(key.startsWith(JOBS_PREFIX)).toBe(true);
      expect(objectKeys.jobOf(key)).toBe(id);
    }
    expect(new Set(every).size).toBe(every.length);
    for (const prefix of objectKeys.intermediates(id)) expect(prefix.startsWith(objectKeys.job(id))).toBe(true);
    expect(objectKeys.jobOf('elsewhere/x')).toBeUndefined();
  });

  it('reads back what its keys encode', () => {
    expect(objectKeys.checkpointChunk(objectKeys.checkpoint(id, 2, 123))).toBe(123);
    expect(objectKeys.checkpoint(id, 2, 123).startsWith(objectKeys.pass(id, 2))).toBe(true);
    expect(objectKeys.livePartOffset(objectKeys.livePart(id, 'bass', 987_654))).toBe(987_654);
    expect(objectKeys.isInput(objectKeys.input(id))).toBe(true);
    expect(objectKeys.isInput(objectKeys.pcm(id))).toBe(false);
    const other = randomUUID();
    expect(objectKeys.inJob(objectKeys.stem(id, 'drums', 'flac'), id, other)).toBe(objectKeys.stem(other, 'drums', 'flac'));
    expect(() => objectKeys.inJob(objectKeys.stem(other, 'drums', 'flac'), id, other)).toThrow(/not an object of job/);
  });

  it('checks the objects services leave for each other', () => {
    expect(LiveManifest.safeParse({ format: 'wav16', contentType: 'audio/wav', sampleRate: 44100, frames: 10, bytes: null }).success).toBe(true);
    expect(LiveManifest.safeParse({ format: 'ogg', contentType: 'audio/ogg', sampleRate: 44100, frames: 10, bytes: null }).success).toBe(false);
    expect(WebhookTarget.safeParse({ url: 'https://example.com/hook', owner: null }).success).toBe(true);
    expect(WebhookTarget.safeParse({ url: 'https://example.com/hook' }).success).toBe(false);
    expect(ImportTarget.safeParse({ url: 42 }).success).toBe(false);
    expect(PcmManifest.safeParse({ frames: 441000, durationSec: 10 }).success).toBe(true);
    expect(PcmManifest.safeParse({ frames: -1, durationSec: 10 }).success).toBe(false);
    expect(CompletedMarker.safeParse({ stems: [], timings: {} }).success).toBe(false); // a job completes with at least one stem
  });
});
