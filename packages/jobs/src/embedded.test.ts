import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jobStoreContract } from './contract.js';
import { EmbeddedJobStore } from './embedded.js';

jobStoreContract(
  'embedded',
  async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'stemflow-jobs-')), 'jobs.jsonl');
    let store = await EmbeddedJobStore.open(file);
    return {
      store,
      peer: async () => store,
      reopen: async () => {
        await store.close();
        store = await EmbeddedJobStore.open(file);
        return store;
      },
    };
  },
  { orders: 200 },
);
