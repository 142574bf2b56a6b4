/**
 * The four workers of one process on one set of adapters: status, decoder, separator (one model
 * instance). `pnpm start` puts the gateway in front of it; the CLI drives it directly.
 */
import type { Adapters, Check, Running } from '@stemflow/runtime';
import { startDecoder, type ImportConfig } from '@stemflow/decoder';
export { ffmpegVersions } from '@stemflow/decoder';
import { loadEngine, startSeparator } from '@stemflow/separator';
import { startStatus } from '@stemflow/status';
import { startWebhooks, type WebhooksOptions } from '@stemflow/webhooks';
import type { Logger } from '@stemflow/telemetry';

export type PipelineOptions = {
  device: 'auto' | 'cpu' | 'cuda';
  threads: number;
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

export async function startPipeline(adapters: Adapters, log: Logger, o: PipelineOptions): Promise<Running & { device: 'cpu' | 'cuda'; health: Check }> {
  const status = await startStatus(adapters, log.child({ component: 'status' }), { jobTtlHours: o.jobTtlHours });
  const decoder = await startDecoder({ ...adapters, log: log.child({ component: 'decoder' }) }, {
    maxDurationSec: o.maxDurationSec,
    ...(o.maxModelRuns !== undefined ? { maxModelRuns: o.maxModelRuns } : {}),
    ...(o.decodeTimeoutSec !== undefined ? { timeoutSec: o.decodeTimeoutSec } : {}),
    ...(o.decodeStallSec !== undefined ? { stallSec: o.decodeStallSec } : {}),
    ...(o.import ? { import: o.import } : {}),
  });
  const { engine, device, health } = await loadEngine({ device: o.device, threads: o.threads, memArena: false, log });
  const separator = await startSeparator({ ...adapters, engine, log: log.child({ component: 'separator' }), maxHoldMs: o.maxHoldSec ? o.maxHoldSec * 1000 : undefined });
  const webhooks = o.webhooks ? await startWebhooks({ ...adapters, log: log.child({ component: 'webhooks' }) }, o.webhooks) : undefined;
  return {
    device,
    health,
    stop: async () => {
      await webhooks?.stop();
      await separator.stop();
      await engine.close(); // the model's thread
      await decoder.stop();
      await status.stop();
    },
  };
}
