/**
 * The whole pipeline in this process on the embedded adapters (filesystem store, embedded job
 * store, in-process bus) with the tiny model of htdemucs's shape (models/tiny): a job goes from
 * upload to stems in about a second, so an outside client (the generated one, a fuzzer) can drive
 * whole jobs through the real gateway, decoder, separator and status code.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ort } from '@stemflow/models';
import { InMemoryBus } from '@stemflow/bus';
import { startDecoder, type ImportConfig } from '@stemflow/decoder';
import { addressPolicy } from '@stemflow/net';
import { EventsHub, createApp, type GatewayOptions } from '@stemflow/gateway';
import { EmbeddedJobStore, EmbeddedLedger } from '@stemflow/jobs';
import { HtdemucsEngine, startSeparator } from '@stemflow/separator';
import { startStatus } from '@stemflow/status';
import { FsBlobStore } from '@stemflow/storage';
import { createLogger } from '@stemflow/telemetry';

const tinyModel = fileURLToPath(new URL('../../models/tiny/tiny-htdemucs.onnx', import.meta.url));

export type TinyStack = { url: string; blobs: FsBlobStore; jobs: EmbeddedJobStore; bus: InMemoryBus; close(): Promise<void> };

/** `importing`: the decoder's import settings (its address policy defaults to the gateway's `policy`). */
export async function tinyStack(o: Partial<GatewayOptions> & { port?: number; logLevel?: 'silent' | 'error' | 'warn' | 'info'; importing?: Partial<ImportConfig> } = {}): Promise<TinyStack> {
  const root = mkdtempSync(join(tmpdir(), 'stemflow-tiny-'));
  const log = createLogger('tiny-stack', o.logLevel ?? 'silent');
  const blobs = new FsBlobStore(join(root, 'objects'));
  const jobs = await EmbeddedJobStore.open(join(root, 'jobs.jsonl'));
  const bus = new InMemoryBus({ log });
  const status = await startStatus({ bus, blobs, jobs }, log);
  const decoder = await startDecoder(
    { bus, blobs, log },
    { maxDurationSec: 120, import: { policy: o.policy ?? addressPolicy(), timeoutMs: 120_000, maxBytes: o.maxUploadBytes ?? 8 << 20, ...o.importing } },
  );
  const engine = new HtdemucsEngine(await ort.InferenceSession.create(tinyModel));
  const separator = await startSeparator({ bus, blobs, log, engine });
  const hub = await EventsHub.start(bus, log);
  const ledger = EmbeddedLedger.open(join(root, 'ledger.jsonl'));
  const { importing: _i, port: _p, logLevel: _l, ...gw } = o;
  const app = createApp({ bus, blobs, jobs, log }, { maxUploadBytes: 8 << 20, hub, ledger, ssePollMs: 100, sseKeepAliveMs: 1000, ...gw });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(o.port ?? 0, '127.0.0.1', () => resolve(s));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    blobs,
    jobs,
    bus,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await hub.close();
      await separator.stop();
      await engine.close();
      await decoder.stop();
      await status.stop();
      await ledger.close();
      await bus.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
