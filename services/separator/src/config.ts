/** The separator's configuration: the shared pieces (packages/config) and its own. */
import { blankIsUnset, defineService, infraEnv, int, port, qualityEnv, type ConfigOf } from '@stemflow/config';
import { z } from 'zod';

/** The separator's own variables: device, engines and their threads, jobs at once, the hand-back bound. */
export const separatorEnv = z.object({
  SEPARATOR_DEVICE: z.preprocess(blankIsUnset, z.enum(['auto', 'cpu', 'cuda']).default('auto')),
  /** Longest a job holds its message unacked before continuing from a fresh one (consumer timeout). */
  SEPARATOR_MAX_HOLD_SEC: z.preprocess(blankIsUnset, int(10).default(900)),
  /** ONNX Runtime intra-op threads per engine; 0 → the cores shared out among the engines. */
  SEPARATOR_THREADS: z.preprocess(blankIsUnset, int(0, 1024).default(0)),
  /** Model sessions (each in its own worker thread) the jobs share; 0 → one per core, as many as half the memory holds (one on a GPU). */
  SEPARATOR_ENGINES: z.preprocess(blankIsUnset, int(0, 64).default(0)),
  /** Jobs one separator takes at once (the queue's prefetch); 0 → one more than the engines. */
  SEPARATOR_CONCURRENCY: z.preprocess(blankIsUnset, int(0, 64).default(0)),
});

export const separatorConfig = defineService('separator', infraEnv.extend(separatorEnv.shape).extend(qualityEnv.shape).extend({ PORT: port(8002) }));
export type SeparatorConfig = ConfigOf<typeof separatorConfig>;
