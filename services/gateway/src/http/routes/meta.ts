/**
 * What needs no key: liveness, health, metrics, the API documents and the problem catalogue, the
 * Swagger UI and the web page.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router } from 'express';
import { asyncApiDocument, isProblemCode, openApiDocument, problemCatalogue } from '@stemflow/contracts';
import { adapterChecks, metricsAllowed, runChecks, type Check } from '@stemflow/runtime';
import { renderMetrics } from '@stemflow/telemetry';
import { keyOf } from '../auth.js';
import type { Gateway } from '../context.js';
import { problem } from '../problems.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The web page's folder (index.html and its assets). */
export const PUBLIC = join(here, '..', '..', '..', 'public');
const require = createRequire(import.meta.url);

export const swaggerPage = `<!doctype html><html><head><meta charset="utf-8"><title>stemflow API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head><body><div id="ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({ url: '/api/openapi.json', dom_id: '#ui' });</script></body></html>`;

/** The public API routes (mounted before authentication). */
export function publicApiRouter(g: Gateway): Router {
  const r = Router();
  const eventsCheck: Check = {
    name: 'events',
    check: async () => {
      const hub = g.options.hub;
      if (!hub) return { ok: true, detail: 'no bus subscription: SSE polls the read model' };
      return hub.live ? { ok: true, detail: `pushed from the bus to ${hub.streams} open streams` } : { ok: false, detail: 'the bus subscription is down: SSE polls the read model' };
    },
  };
  // Each dependency up or down, for anyone (load balancers, uptime checks); what each is (paths,
  // versions, hosts) only for a caller with an API key who asks (?details=true), or on the
  // workers' own health port, which operators reach and the public does not.
  const known = keyOf(g.options.apiKeys);
  const mayDetail = (authorization: string | undefined) => !g.options.apiKeys?.length || typeof known(authorization) === 'string';
  r.get('/health', async (req, res) => {
    const h = await runChecks([...(g.options.checks ?? adapterChecks(g.deps)), eventsCheck]);
    if (h.status !== 'ok') res.set('retry-after', '5');
    const details = req.query.details === 'true' && mayDetail(req.get('authorization'));
    res.status(h.status === 'ok' ? 200 : 503).json(details ? h : { status: h.status, dependencies: h.dependencies.map(({ name, ok }) => ({ name, ok })) });
  });
  const doc = openApiDocument();
  r.get('/openapi.json', (_req, res) => void res.json(doc));
  const events = asyncApiDocument();
  r.get('/asyncapi.json', (_req, res) => void res.json(events));
  const catalogue = problemCatalogue();
  r.get('/problems', (_req, res) => void res.json(catalogue));
  r.get('/problems/:code', (req, res) => {
    const code = String(req.params.code);
    const p = isProblemCode(code) ? catalogue.problems.find((x) => x.code === code) : undefined;
    if (!p) throw problem('NOT_FOUND', `no problem type ${code.slice(0, 64)}`);
    res.json(p);
  });
  return r;
}

/** Outside /api: liveness, metrics, the docs page, the web page and its vendored library. */
export function siteRouter(metricsToken: string | undefined): Router {
  const r = Router();
  r.get('/livez', (_req, res) => void res.json({ status: 'ok' }));
  r.get('/metrics', async (req, res) => {
    if (!metricsAllowed(req.get('authorization'), metricsToken)) return void res.status(401).set('www-authenticate', 'Bearer').type('text').send('send the METRICS_TOKEN as "Authorization: Bearer <token>"\n');
    const m = await renderMetrics();
    res.type(m.contentType).send(m.body);
  });
  r.get('/docs', (_req, res) => void res.type('html').send(swaggerPage));
  r.use('/docs/assets', express.static(dirname(require.resolve('swagger-ui-dist/package.json')), { index: false }));
  // The waveform library the page draws with (wavesurfer.js, BSD-3-Clause), from its package.
  const vendor = dirname(require.resolve('wavesurfer.js'));
  r.get('/vendor/wavesurfer.min.js', (_req, res) => void res.type('js').sendFile('wavesurfer.min.js', { root: vendor, maxAge: '1d' }));
  // Tempo and transpose in the browser: SoundTouch's AudioWorklet processor (MPL-2.0), from its package.
  const soundtouch = dirname(require.resolve('@soundtouchjs/audio-worklet/processor'));
  r.get('/vendor/soundtouch-processor.js', (_req, res) => void res.type('js').sendFile('soundtouch-processor.js', { root: soundtouch, maxAge: '1d' }));
  r.use(express.static(PUBLIC, { index: 'index.html' }));
  return r;
}
