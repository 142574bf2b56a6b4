import { MongoJobStore } from '@stemflow/jobs';
import { jobStoreContract } from '@stemflow/jobs/contract';
import { afterAll } from 'vitest';
import { engineEnv, unique } from '../support/env.js';

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
