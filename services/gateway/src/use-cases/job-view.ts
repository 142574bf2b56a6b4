/**
 * The job as a client sees it: the read model's document with what this gateway heard since
 * applied over it (the projection's lag never sits between an event and a client). The read
 * model decides whether a job exists: a job it does not hold is gone, whatever was heard of it
 * (a delete on any gateway removes it there). Only while the database cannot answer does what
 * this gateway heard stand alone (a job it saw created).
 */
import type { Job } from '@stemflow/contracts';
import type { JobStore } from '@stemflow/jobs';
import { readModelReads } from '@stemflow/telemetry';
import type { EventsHub } from './events-hub.js';

export type JobReader = { get: (id: string, by?: 'api' | 'sse_open' | 'sse_poll') => Promise<Job | undefined> };

/** A read of a job this gateway heard of does not wait the database's whole timeout. */
const SLOW_READ_MS = 2000;

export function jobReader(jobs: Pick<JobStore, 'get'>, hub: EventsHub | undefined): JobReader {
  return {
    async get(id, by = 'api') {
      readModelReads.inc({ by });
      const heard = hub?.latest(id);
      const read = jobs.get(id);
      read.catch(() => {}); // awaited below; a read outrun by the timeout must not go unhandled
      let doc: Job | undefined;
      try {
        doc = heard ? await Promise.race([read, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('read model slow')), SLOW_READ_MS).unref())]) : await read;
      } catch (err) {
        if (heard) return heard;
        throw err;
      }
      if (!doc) return undefined;
      return hub ? hub.latest(id, doc) : doc;
    },
  };
}
