import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createApp, type GatewayOptions } from '@stemflow/gateway';
import type { Adapters } from '@stemflow/runtime';
import { createLogger } from '@stemflow/telemetry';

/** The gateway's express app on a random loopback port. */
export async function serveGateway(adapters: Adapters, opts: Partial<GatewayOptions> = {}) {
  const app = createApp({ ...adapters, log: createLogger('gateway', 'silent') }, { maxUploadBytes: 50 * 1024 * 1024, ssePollMs: 50, ...opts });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, close: () => new Promise<void>((r) => server.close(() => r())) };
}

export function form(file: { name: string; data: Buffer; type?: string; field?: string } | undefined, fields: Record<string, string> = {}) {
  const f = new FormData();
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  if (file) f.append(file.field ?? 'file', new Blob([new Uint8Array(file.data)], { type: file.type ?? 'application/octet-stream' }), file.name);
  return f;
}
