/**
 * The gateway's express app: middleware and routers, mounted in order. Public routes first (the
 * page, health, the documents), then CORS, authentication and the rate limit for the rest of
 * /api, the resource routers, and the answers for paths and methods the API lacks. Every error
 * becomes a problem in one place (problems.ts).
 */
import express, { type Request } from 'express';
import { addressPolicy } from '@stemflow/net';
import { httpRequestDuration } from '@stemflow/telemetry';
import { jobReader } from '../use-cases/job-view.js';
import type { Deps } from '../use-cases/jobs.js';
import { Submitter } from '../use-cases/submit-job.js';
import { authenticate } from './auth.js';
import type { Gateway, GatewayOptions } from './context.js';
import { corsFor } from './cors.js';
import { errorHandler } from './problems.js';
import { rateLimit } from './rate-limit.js';
import { securityHeaders } from './security-headers.js';
import { accountRouter } from './routes/account.js';
import { eventsRouter } from './routes/events.js';
import { jobsRouter } from './routes/jobs.js';
import { publicApiRouter, siteRouter } from './routes/meta.js';
import { stemsRouter } from './routes/stems.js';
import { unmatched } from './unmatched.js';

export function createApp(deps: Deps, options: GatewayOptions) {
  const reader = jobReader(deps.jobs, options.hub);
  const submitter = new Submitter(deps, { maxUploadBytes: options.maxUploadBytes, maxModelRuns: options.maxModelRuns, ledger: options.ledger, policy: options.policy ?? addressPolicy(), webhookSecret: options.webhookSecret, defaultQuality: options.defaultQuality ?? 'fast' }, reader);
  const g: Gateway = { deps, options, reader, submitter };

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.set('etag', false); // validators are set where they mean something: on files (send-file.ts)
  app.use(timing);
  app.use(securityHeaders(Boolean(options.corsOrigins?.length)));
  app.use(siteRouter(options.metricsToken));
  app.use('/api', corsFor(options.corsOrigins));
  app.use('/api', publicApiRouter(g));
  app.use('/api', authenticate(options.apiKeys, options.keySettings), rateLimit(submitter.limits, deps.log, options.now));
  app.use('/api', jobsRouter(g), eventsRouter(g), stemsRouter(g), accountRouter(g));
  app.use('/api', unmatched);
  app.use(errorHandler(deps.log, options.maxUploadBytes));
  return app;
}

/** Request durations by route template (never by raw path: ids would explode the label set). */
function timing(req: Request, res: express.Response, next: express.NextFunction) {
  const end = httpRequestDuration.startTimer();
  res.once('finish', () => {
    const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : res.statusCode === 404 ? 'unmatched' : 'static';
    end({ method: req.method, route, status: String(res.statusCode) });
  });
  next();
}
