import { watchCancellations } from '@stemflow/bus';
import { QUEUES } from '@stemflow/contracts';
import { isMarkedCanceled } from '@stemflow/storage';
import type { Running } from '@stemflow/runtime';
import { timeStage } from '@stemflow/telemetry';
import { decodeJob, type DecodeConfig, type DecodeDeps } from './use-cases/decode-job.js';

export { decodeJob } from './use-cases/decode-job.js';
export type { ImportConfig } from './use-cases/import-input.js';
/** For processes that decode without runService (the CLI): is ffmpeg there, and which. */
export { ffmpegVersions } from '@stemflow/audio';

/** Consumes job.created; watches cancellations (its own queue, and the gateway's marker in the store). */
export async function startDecoder(deps: Omit<DecodeDeps, 'cancels'>, config: DecodeConfig, queue = QUEUES.decoder as import('@stemflow/contracts').QueueSpec): Promise<Running> {
  const cancels = await watchCancellations(deps.bus, { marked: isMarkedCanceled(deps.blobs) });
  const withCancels: DecodeDeps = { ...deps, cancels };
  const sub = await deps.bus.subscribe(queue, { 'job.created': (e) => timeStage('decode', () => decodeJob(withCancels, e, config)) });
  return {
    stop: async () => {
      await sub.close();
      await cancels.close();
    },
  };
}
