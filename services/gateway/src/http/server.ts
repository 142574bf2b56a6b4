/** The gateway's HTTP server as both deployables run it (gateway alone, and `pnpm start`). */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { GatewayConfig } from '../config.js';
import { adapterChecks, type Check } from '@stemflow/runtime';
import { createLedger } from '@stemflow/jobs';
import { addressPolicy } from '@stemflow/net';
import { startOrphanSweeper } from '../use-cases/sweep-orphans.js';
import type { Deps } from '../use-cases/jobs.js';
import { EventsHub } from '../use-cases/events-hub.js';
import { createApp } from './app.js';
import { PROBLEM_JSON, problem, problemBody, sendProblem } from './problems.js';
import { answerAndClose } from './upload-engine.js';

type HttpConfig = Pick<
  GatewayConfig,
  | 'PORT'
  | 'HOST'
  | 'MAX_UPLOAD_BYTES'
  | 'API_KEYS'
  | 'HTTP_IDLE_TIMEOUT_SEC'
  | 'UPLOAD_MIN_BYTES_PER_SEC'
  | 'UPLOAD_ORPHAN_GRACE_SEC'
  | 'REQUEST_HEAD_TIMEOUT_SEC'
  | 'MAX_CONNECTIONS'
  | 'MAX_CONNECTIONS_PER_CLIENT'
  | 'MAX_MODEL_RUNS'
  | 'API_KEY_SETTINGS'
  | 'WEBHOOK_SECRET'
  | 'OUTBOUND_ALLOW_CIDRS'
  | 'DATABASE_URL'
  | 'STORAGE_ROOT'
  | 'CORS_ORIGINS'
  | 'METRICS_TOKEN'
  | 'DEFAULT_QUALITY'
>;

/** Seconds a client told "too many connections" is asked to wait. */
const RETRY_AFTER_SEC = 5;
const OVER_CAP = Symbol('over connection cap');

export async function startGateway(deps: Deps, config: HttpConfig, checks: Check[] = adapterChecks(deps)): Promise<{ server: Server; stop: () => Promise<void> }> {
  const headMs = config.REQUEST_HEAD_TIMEOUT_SEC * 1000;
  // Every job event, on this gateway's own queue, for its SSE streams.
  const hub = await EventsHub.start(deps.bus, deps.log.child({ component: 'events' }));
  // Idempotency keys, job slots and request counters: in the database, shared by every gateway.
  const ledger = await createLedger(config);
  const sweep = setInterval(() => void ledger.sweep().catch((err: Error) => deps.log.warn({ err: err.message }, 'ledger sweep failed, will try again')), 60_000);
  sweep.unref();
  const app = createApp(deps, {
    ledger,
    keySettings: config.API_KEY_SETTINGS,
    policy: addressPolicy(config.OUTBOUND_ALLOW_CIDRS),
    webhookSecret: config.WEBHOOK_SECRET,
    hub,
    maxUploadBytes: config.MAX_UPLOAD_BYTES,
    apiKeys: config.API_KEYS,
    minUploadBytesPerSec: config.UPLOAD_MIN_BYTES_PER_SEC,
    idleTimeoutMs: config.HTTP_IDLE_TIMEOUT_SEC * 1000,
    formTimeoutMs: headMs,
    maxModelRuns: config.MAX_MODEL_RUNS,
    defaultQuality: config.DEFAULT_QUALITY,
    corsOrigins: config.CORS_ORIGINS,
    metricsToken: config.METRICS_TOKEN,
    checks,
  });
  const server = createServer(
    {
      // Uploads can be long: no whole-request deadline; the head must arrive within its own, and
      // Node checks it (and the idle timeout below) every second instead of every 30 s.
      requestTimeout: 0,
      headersTimeout: headMs,
      connectionsCheckingInterval: Math.min(1000, headMs),
    },
    (req: IncomingMessage, res: ServerResponse) => {
      // Past the cap the client already got its 503: nothing it sends is handled.
      if ((req.socket as Socket & { [OVER_CAP]?: boolean })[OVER_CAP]) return void req.socket.destroy();
      if (refusedBySize(req, res, config.MAX_UPLOAD_BYTES)) return;
      app(req, res);
    },
  );
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    if (refusedBySize(req, res, config.MAX_UPLOAD_BYTES, true)) return;
    res.writeContinue();
    server.emit('request', req, res);
  });
  capConnections(server, config.MAX_CONNECTIONS, config.MAX_CONNECTIONS_PER_CLIENT);
  server.listen(config.PORT, config.HOST);
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  dropIdle(server, config.HTTP_IDLE_TIMEOUT_SEC);
  const stopSweeper = startOrphanSweeper(deps, config.UPLOAD_ORPHAN_GRACE_SEC * 1000, deps.log);
  return {
    server,
    stop: async () => {
      stopSweeper();
      clearInterval(sweep);
      await hub.close();
      // Open SSE streams would hold close() forever: they get 5 s, then are cut (clients reconnect).
      const cut = setTimeout(() => server.closeAllConnections(), 5000);
      await new Promise<void>((r) => server.close(() => r()));
      clearTimeout(cut);
      await ledger.close();
    },
  };
}

/**
 * An upload that says it is larger than the server takes is refused before its body: a client
 * sending `Expect: 100-continue` gets 413 instead of 100 and sends nothing more (the connection
 * is closed); one that did not ask gets 413 at once, and what it still sends is discarded, never
 * stored (closing now would cut its request before it reads the answer).
 */
function refusedBySize(req: IncomingMessage, res: ServerResponse, maxUploadBytes: number, expectsContinue = false): boolean {
  const length = Number(req.headers['content-length']);
  // The whole multipart body may exceed the file by its form fields and boundaries.
  if (!(req.method === 'POST' && Number.isFinite(length) && length > maxUploadBytes + 64 * 1024)) return false;
  if (expectsContinue) res.setHeader('connection', 'close');
  sendProblem(req, res, problem('UPLOAD_TOO_LARGE', `the request is ${length} bytes; this server accepts files of at most ${maxUploadBytes} bytes`));
  return true;
}

/**
 * Connection caps, per process and per client address: past either the client gets 503 with
 * Retry-After at once, and the connection is closed.
 */
function capConnections(server: Server, max: number, maxPerClient: number): void {
  let open = 0;
  const perClient = new Map<string, number>();
  server.prependListener('connection', (socket: Socket & { [OVER_CAP]?: boolean }) => {
    const addr = socket.remoteAddress ?? 'unknown';
    const mine = perClient.get(addr) ?? 0;
    if (open >= max || mine >= maxPerClient) {
      socket[OVER_CAP] = true;
      const which = open >= max ? 'the server has as many connections as it takes' : `this client has ${mine} connections open, the most this server allows`;
      const body = JSON.stringify(problemBody('TOO_MANY_CONNECTIONS', `${which}; retry in ${RETRY_AFTER_SEC} s`, '/'));
      socket.on('error', () => {});
      socket.end(`HTTP/1.1 503 Service Unavailable\r\nRetry-After: ${RETRY_AFTER_SEC}\r\nContent-Type: ${PROBLEM_JSON}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    open++;
    perClient.set(addr, mine + 1);
    socket.once('close', () => {
      open--;
      const n = (perClient.get(addr) ?? 1) - 1;
      if (n > 0) perClient.set(addr, n);
      else perClient.delete(addr);
    });
  });
}

/**
 * A connection idle this long is dropped, with a 408 when nothing was answered yet; the request
 * is destroyed with it, so an upload's store write is aborted and its temp object removed.
 */
function dropIdle(server: Server, idleSec: number): void {
  server.setTimeout(idleSec * 1000);
  server.on('timeout', (socket: Socket) => {
    const res = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    const req = res?.req;
    if (req && res && !res.headersSent) answerAndClose(req as Parameters<typeof answerAndClose>[0], problem('REQUEST_TIMEOUT', `nothing was received for ${idleSec} s`));
    else {
      req?.destroy();
      socket.destroy();
    }
  });
}
