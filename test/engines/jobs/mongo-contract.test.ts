import { MongoJobStore } from '@stemflow/jobs';
import { created, decoded, jobStoreContract, progress, t } from '@stemflow/jobs/contract';
import mongoose from 'mongoose';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, describe, expect, it } from 'vitest';
import { engineEnv, unique } from '../../support/env.js';

const url = () => engineEnv('DATABASE_URL').replace(/\/[^/]*$/, `/${unique('jobs').replace(/-/g, '_')}`);
const open: MongoJobStore[] = [];
afterAll(async () => {
  for (const s of open) await s.close().catch(() => {});
});

const db = url();
jobStoreContract(
  'MongoDB (FerretDB)',
  async () => {
    const store = await MongoJobStore.connect(db);
    open.push(store);
    return {
      store,
      // Within a replica, writes to one job are serialized and CAS-checked. FerretDB (v1, SQLite)
      // has no atomic conditional update across connections, so replicas are kept apart by the
      // status queue's single-active-consumer instead (tested with the status service).
      peer: async () => store,
    };
  },
  { orders: 12 },
);

describe('MongoDB job store: batched compare-and-set writes', () => {
  const connect = async () => {
    const s = await MongoJobStore.connect(db);
    open.push(s);
    return s;
  };
  /** The stored compare-and-set counter: one more per write that landed. */
  const versionOf = async (id: string) => {
    const conn = await mongoose.createConnection(db).asPromise();
    try {
      return ((await conn.db!.collection('jobs').findOne({ _id: id as never }))?.version as number | undefined);
    } finally {
      await conn.close();
    }
  };

  it('writes a burst of events in a few writes, one per job, and settles each once stored', async () => {
    const store = await connect();
    const ids = Array.from({ length: 5 }, () => uuidv7());
    for (const id of ids) await store.apply(created(id));
    const burst = ids.flatMap((id) => Array.from({ length: 40 }, (_, i) => progress(id, 'separating', (i + 1) / 40, t(10 + i))));
    const outcomes = await Promise.all(burst.map((e) => store.apply(e)));
    expect(outcomes.filter((o) => o.outcome === 'applied').length).toBeGreaterThanOrEqual(ids.length);
    for (const id of ids) {
      expect((await store.get(id))?.progress).toBe(1);
      expect(await versionOf(id)).toBeLessThan(10); // 40 events, not 40 writes
    }
  });

  it('re-reads and re-applies when another writer changed the job since it last saw it', async () => {
    const [a, b] = [await connect(), await connect()];
    const id = uuidv7();
    await a.apply(created(id));
    await a.apply(progress(id, 'separating', 0.2, t(3))); // a now remembers version 2
    await b.apply(decoded(id, t(2))); // version 3, written by b
    const r = await a.apply(progress(id, 'separating', 0.4, t(4))); // a's version 2 is stale
    expect(r.outcome).toBe('applied');
    const j = (await b.get(id))!;
    expect(j.input.duration_sec).toBe(20); // b's write survives
    expect(j.progress).toBe(0.4);
    expect(await versionOf(id)).toBe(4);
  });

  it('does not bring back a job another process deleted', async () => {
    const [a, b] = [await connect(), await connect()];
    const id = uuidv7();
    await a.apply(created(id));
    await a.apply(progress(id, 'separating', 0.2, t(3)));
    expect(await b.delete(id)).toBe(true);
    expect((await a.apply(progress(id, 'separating', 0.5, t(5)))).outcome).toBe('stale');
    expect(await b.get(id)).toBeUndefined();
  });
});
