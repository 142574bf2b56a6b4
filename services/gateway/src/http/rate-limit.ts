/**
 * Requests per second per key, counted in the ledger (so across every gateway). The database
 * down must not take the API with it: the limit is then not enforced (logged), reads go on.
 */
import type { RequestHandler } from 'express';
import { describeError } from '@stemflow/contracts';
import { limitRefusals, type Logger } from '@stemflow/telemetry';
import { rateLimitFields, type Limits } from '../use-cases/limits.js';
import { ownerFor, settingsFor } from './context.js';
import { problem } from './problems.js';

export function rateLimit(limits: Limits | undefined, log: Logger, now: () => number = Date.now): RequestHandler {
  return async (_req, res, next) => {
    const s = settingsFor(res);
    if (!s.requests_per_sec || !limits) return next();
    let count: number;
    try {
      count = (await limits.hit(ownerFor(res) ?? null, s.requests_per_sec, now())).count;
    } catch (err) {
      log.warn({ err: describeError(err) }, 'rate limit not enforced: the ledger is unavailable');
      return next();
    }
    const fields = rateLimitFields(s, { requests: count });
    res.set({ 'ratelimit-policy': fields.policy.join(', '), ratelimit: fields.state.join(', ') });
    if (count > s.requests_per_sec) {
      limitRefusals.inc({ limit: 'rate' });
      throw problem('RATE_LIMITED', `this API key may make ${s.requests_per_sec} requests per second; wait a second`, { retryAfterSec: 1, limits: fields });
    }
    next();
  };
}
