import { objectKeys } from '@stemflow/contracts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { FsBlobStore } from '@stemflow/storage';
import { describe, expect, it } from 'vitest';
import { pipeLiveStem, type LiveDeps } from './live-stem.js';

describe('a live stem to a client that stops reading', () => {
  it('is given up after stallMs, its listeners removed (no wait left behind)', async () => {
    const blobs = new FsBlobStore(mkdtempSync(join(tmpdir(), 'live-')));
    await blobs.put(objectKeys.livePart('j', 'vocals', 0), Buffer.alloc(1 << 20, 1));
    // A client whose socket never drains: every write is taken and never acknowledged.
    const out = new Writable({ highWaterMark: 1024, write: () => {} });
    const deps: LiveDeps = { blobs, stallMs: 150, job: async () => undefined, nextEvent: async () => {} };
    const t0 = Date.now();
    await expect(pipeLiveStem(deps, 'j', 'vocals', out, 0, 1 << 20)).rejects.toMatchObject({ code: 'CLIENT_GONE' });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(out.listenerCount('drain') + out.listenerCount('close')).toBe(0);
  });
});
