import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { jobStoreContract } from './contract.js';
import { EmbeddedJobStore } from './embedded.js';

/** Every store a case opened, closed at the end (an open log file left to the GC warns). */
const opened: EmbeddedJobStore[] = [];
const open = async (file: string) => {
  const s = await EmbeddedJobStore.open(file);
  opened.push(s);
  return s;
};
afterAll(async () => {
  for (const s of opened) await s.close().catch(() => {});
});

jobStoreContract(
  'embedded',
  async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'stemflow-jobs-')), 'jobs.jsonl');
    let store = await open(file);
    return {
      store,
      peer: async () => store,
      reopen: async () => {
        await store.close();
        store = await open(file);
        return store;
      },
    };
  },
  { orders: 200 },
);
