/**
 * Cross-origin calls from browsers, for the origins CORS_ORIGINS names (none by default: the page
 * is same-origin). A preflight is answered before authentication (browsers send no key with it);
 * the headers a client reads (validators, ranges, limits, the job's location) are exposed.
 */
import cors from 'cors';
import type { RequestHandler } from 'express';

const EXPOSED = ['Location', 'ETag', 'Last-Modified', 'Accept-Ranges', 'Content-Range', 'Content-Length', 'Content-Disposition', 'RateLimit', 'RateLimit-Policy', 'Retry-After', 'Idempotent-Replayed', 'X-Stemflow-Live', 'Allow'];
const ALLOWED = ['Authorization', 'Content-Type', 'Idempotency-Key', 'Range', 'If-Range', 'If-None-Match', 'Last-Event-ID'];

export function corsFor(origins: string[] | undefined): RequestHandler {
  if (!origins?.length) return (_req, _res, next) => next();
  return cors({
    origin: origins.includes('*') ? '*' : origins,
    methods: ['GET', 'HEAD', 'POST', 'DELETE'],
    allowedHeaders: ALLOWED,
    exposedHeaders: EXPOSED,
    maxAge: 600,
    credentials: false,
  });
}
