/** The gateway's HTTP server as both deployables run it (gateway alone, and `pnpm start`). */
import type { Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ConfigOf } from '@stemflow/config';
import { startOrphanSweeper } from '../use-cases/sweep-orphans.js';
import type { Deps } from '../use-cases/jobs.js';
import { createApp } from './http.js';

type HttpConfig = Pick<ConfigOf<'gateway'>, 'PORT' | 'HOST' | 'MAX_UPLOAD_BYTES' | 'API_KEYS' | 'HTTP_IDLE_TIMEOUT_SEC' | 'UPLOAD_MIN_BYTES_PER_SEC' | 'UPLOAD_ORPHAN_GRACE_SEC'>;

export async function startGateway(d: Deps, c: HttpConfig): Promise<{ server: Server; stop: () => Promise<void> }> {
  const idleMs = c.HTTP_IDLE_TIMEOUT_SEC * 1000;
  const app = createApp(d, { maxUploadBytes: c.MAX_UPLOAD_BYTES, apiKeys: c.API_KEYS, minUploadBytesPerSec: c.UPLOAD_MIN_BYTES_PER_SEC, idleTimeoutMs: idleMs });
  const server = app.listen(c.PORT, c.HOST);
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  // Uploads can be long: no whole-request deadline, but a connection idle this long is dropped,
  // with a 408 when nothing was answered yet (the upload's partial object is removed).
  server.requestTimeout = 0;
  server.headersTimeout = Math.min(60_000, idleMs + 1000);
  server.setTimeout(idleMs);
  server.on('timeout', (socket: Socket) => {
    const res = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    if (res && !res.headersSent) {
      const body = JSON.stringify({ error: { code: 'REQUEST_TIMEOUT', message: `nothing was received for ${c.HTTP_IDLE_TIMEOUT_SEC} s` } });
      res.writeHead(408, { 'content-type': 'application/json', connection: 'close' }).end(body, () => socket.destroy());
    } else socket.destroy();
  });
  const stopSweeper = startOrphanSweeper(d, c.UPLOAD_ORPHAN_GRACE_SEC * 1000, d.log);
  return {
    server,
    stop: async () => {
      stopSweeper();
      // Open SSE streams would hold close() forever: they get 5 s, then are cut (clients reconnect).
      const cut = setTimeout(() => server.closeAllConnections(), 5000);
      await new Promise<void>((r) => server.close(() => r()));
      clearTimeout(cut);
    },
  };
}
