export * from './port.js';
export { project, jobFromCreated, DECODE_SHARE, type Outcome } from './projection.js';
export { EmbeddedJobStore } from './embedded.js';
export { MongoJobStore } from './mongo.js';
export { acquire, createLedger, EmbeddedLedger, MongoLedger, release, type Ledger, type Lease } from './ledger.js';
import { join } from 'node:path';
import { EmbeddedJobStore } from './embedded.js';
import { MongoJobStore } from './mongo.js';
import type { JobStore } from './port.js';

/** MongoDB when DATABASE_URL is set, the embedded store under STORAGE_ROOT otherwise. */
export const createJobStore = (c: { DATABASE_URL?: string | undefined; STORAGE_ROOT: string }): Promise<JobStore> =>
  c.DATABASE_URL ? MongoJobStore.connect(c.DATABASE_URL) : EmbeddedJobStore.open(join(c.STORAGE_ROOT, 'jobs.jsonl'));
