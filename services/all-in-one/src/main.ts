/**
 * `pnpm start`: gateway, decoder, separator and status in one process, sharing one set of
 * adapters. With no AMQP_URL, S3_ENDPOINT or DATABASE_URL that is the in-process bus, the
 * filesystem store and the embedded job store under STORAGE_ROOT: no servers needed.
 */
import { startGateway } from '@stemflow/gateway';
import { runService } from '@stemflow/runtime';
import { allInOneConfig } from './config.js';
import { startPipeline } from './index.js';
import { resumeInFlight } from './resume.js';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { addressPolicy } from '@stemflow/net';

/** A secret kept in a file only its owner reads, made on first use. */
function localSecret(file: string): string {
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dirname(file), { recursive: true });
  const secret = randomBytes(32).toString('base64');
  writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  return secret;
}

await runService(allInOneConfig, async ({ config, log, adapters, checks }) => {
  // One process signs and serves the secrets: without WEBHOOK_SECRET, one is made once and kept.
  const webhookSecret = config.WEBHOOK_SECRET ?? localSecret(join(config.STORAGE_ROOT, 'webhook-secret'));
  const policy = addressPolicy(config.OUTBOUND_ALLOW_CIDRS);
  const pipeline = await startPipeline(adapters, log, {
    webhooks: { secret: webhookSecret, policy, timeoutMs: config.WEBHOOK_TIMEOUT_SEC * 1000 },
    import: { policy, timeoutMs: config.IMPORT_TIMEOUT_SEC * 1000, maxBytes: config.MAX_UPLOAD_BYTES },
    device: config.SEPARATOR_DEVICE,
    threads: config.SEPARATOR_THREADS,
    engines: config.SEPARATOR_ENGINES,
    concurrency: config.SEPARATOR_CONCURRENCY,
    quality: config.DEFAULT_QUALITY,
    maxDurationSec: config.MAX_DURATION_SEC,
    maxModelRuns: config.MAX_MODEL_RUNS,
    decodeTimeoutSec: config.DECODE_TIMEOUT_SEC,
    decodeStallSec: config.DECODE_STALL_SEC,
    maxHoldSec: config.SEPARATOR_MAX_HOLD_SEC,
    jobTtlHours: config.JOB_TTL_HOURS,
  });
  // With the in-process bus, a killed process lost its events: announce its unfinished jobs again.
  if (!config.AMQP_URL) await resumeInFlight({ ...adapters, log });
  checks.push(pipeline.health);
  const gateway = await startGateway({ ...adapters, log: log.child({ component: 'gateway' }) }, { ...config, WEBHOOK_SECRET: webhookSecret }, checks);
  log.info({ url: `http://localhost:${config.PORT}` }, `stemflow is running: open http://localhost:${config.PORT}`);
  return {
    stop: async () => {
      await gateway.stop();
      await pipeline.stop();
    },
  };
}, { needsFfmpeg: true });
