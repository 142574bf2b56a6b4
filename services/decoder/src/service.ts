import { QUEUES } from '@stemflow/contracts';
import type { Running } from '@stemflow/runtime';
import { timeStage } from '@stemflow/telemetry';
import { decodeJob, type DecodeConfig, type DecodeDeps } from './use-cases/decode-job.js';

export { decodeJob, clock } from './use-cases/decode-job.js';
/** For processes that decode without runService (the CLI): is ffmpeg there, and which. */
export { ffmpegVersions } from '@stemflow/audio';

export async function startDecoder(d: DecodeDeps, cfg: DecodeConfig, queue = QUEUES.decoder as import('@stemflow/contracts').QueueSpec): Promise<Running> {
  const sub = await d.bus.subscribe(queue, { 'job.created': (e) => timeStage('decode', () => decodeJob(d, e, cfg)) });
  return { stop: () => sub.close() };
}
