import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { renderMetrics } from '@stemflow/telemetry';
import type { Adapters } from './index.js';

export type Check = { name: string; check: () => Promise<{ ok: boolean; detail?: string }> };

export const adapterChecks = (a: Adapters): Check[] => [
  { name: 'broker', check: () => a.bus.health() },
  { name: 'store', check: () => a.blobs.health() },
  { name: 'database', check: () => a.jobs.health() },
];

/** Every dependency's state, each check bounded so one hung dependency cannot hang the answer. */
export async function runChecks(checks: Check[]) {
  const dependencies = await Promise.all(
    checks.map(async (c) => {
      const r = await Promise.race([
        c.check().catch((err: unknown) => ({ ok: false, detail: (err as Error).message })),
        new Promise<{ ok: boolean; detail: string }>((res) => setTimeout(() => res({ ok: false, detail: 'no answer in 2 s' }), 2000).unref()),
      ]);
      return { name: c.name, ...r };
    }),
  );
  return { status: dependencies.every((d) => d.ok) ? ('ok' as const) : ('degraded' as const), dependencies };
}

/** Whether a request may read /metrics: anyone without a token, else only with it (compared in constant time). */
export function metricsAllowed(authorization: string | undefined, token: string | undefined): boolean {
  if (!token) return true;
  const given = createHash('sha256').update(authorization ?? '').digest();
  return timingSafeEqual(given, createHash('sha256').update(`Bearer ${token}`).digest());
}

/**
 * /api/health (200 or 503 with each dependency and its detail: this port is the operators', not
 * the public's), /livez and /metrics for workers without an HTTP API.
 */
export function startHealthServer(port: number, checks: Check[], metricsToken?: string): Promise<Server> {
  const server = createServer(async (req, res) => {
    if (req.url === '/metrics') {
      if (!metricsAllowed(req.headers.authorization, metricsToken)) return void res.writeHead(401, { 'www-authenticate': 'Bearer', 'content-type': 'text/plain' }).end('send the METRICS_TOKEN as "Authorization: Bearer <token>"\n');
      const m = await renderMetrics();
      res.writeHead(200, { 'content-type': m.contentType }).end(m.body);
    } else if (req.url === '/livez') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    } else if (req.url === '/api/health' || req.url === '/readyz') {
      const h = await runChecks(checks);
      res.writeHead(h.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(h));
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"NOT_FOUND","message":"no such endpoint"}}');
    }
  });
  return new Promise((resolve) => server.listen(port, () => resolve(server)));
}
