/**
 * The four workers of one process on one set of adapters: status, decoder, separator (one model
 * instance). `pnpm start` puts the gateway in front of it; the CLI drives it directly.
 */
import type { Adapters, Check, Running } from '@stemflow/runtime';
import { startDecoder, type ImportConfig } from '@stemflow/decoder';
export { ffmpegVersions } from '@stemflow/decoder';
import { loadEngines, startSeparator } from '@stemflow/separator';
import { startStatus } from '@stemflow/status';
import { startWebhooks, type WebhooksOptions } from '@stemflow/webhooks';
import type { Logger } from '@stemflow/telemetry';

export type PipelineOptions = {
  device: 'auto' | 'cpu' | 'cuda';
  threads: number;
  /** Model sessions the jobs share (0 or absent: one per core, as memory allows). */
  engines?: number;
  /** Jobs separated at once (0 or absent: one more than the engines). */
  concurrency?: number;
  /** The graph loaded first: the one jobs run when they do not say. */
  quality?: 'full' | 'fast';
  maxDurationSec: number;
  maxModelRuns?: number;
  decodeTimeoutSec?: number;
  decodeStallSec?: number;
  /** Inputs given by URL (the server; the CLI imports none). */
  import?: ImportConfig;
  maxHoldSec?: number;
  jobTtlHours?: number | undefined;
  /** Delivers jobs' ends to their webhooks (the server; not the CLI). */
  webhooks?: WebhooksOptions;
};

export async function startPipeline(adapters: Adapters, log: Logger, options: PipelineOptions): Promise<Running & { device: 'cpu' | 'cuda'; health: Check }> {
  const status = await startStatus(adapters, log.child({ component: 'status' }), { jobTtlHours: options.jobTtlHours });
  const decoder = await startDecoder({ ...adapters, log: log.child({ component: 'decoder' }) }, {
    maxDurationSec: options.maxDurationSec,
    ...(options.maxModelRuns !== undefined ? { maxModelRuns: options.maxModelRuns } : {}),
    ...(options.decodeTimeoutSec !== undefined ? { timeoutSec: options.decodeTimeoutSec } : {}),
    ...(options.decodeStallSec !== undefined ? { stallSec: options.decodeStallSec } : {}),
    ...(options.import ? { import: options.import } : {}),
  });
  const { pool, device, health } = await loadEngines({ device: options.device, threads: options.threads, engines: options.engines ?? 0, memArena: false, quality: options.quality ?? 'full', log });
  const separator = await startSeparator({ ...adapters, pool, concurrency: options.concurrency ?? 0, log: log.child({ component: 'separator' }), maxHoldMs: options.maxHoldSec ? options.maxHoldSec * 1000 : undefined });
  const webhooks = options.webhooks ? await startWebhooks({ ...adapters, log: log.child({ component: 'webhooks' }) }, options.webhooks) : undefined;
  return {
    device,
    health,
    stop: async () => {
      await webhooks?.stop();
      await separator.stop();
      await pool.close(); // the models' threads
      await decoder.stop();
      await status.stop();
    },
  };
}
