/** The calling key's limits and usage, and the secret its webhooks are signed with. */
import { Router } from 'express';
import { webhookSecret } from '@stemflow/net';
import { rateLimitFields, secondsToUtcMidnight } from '../../use-cases/limits.js';
import { ownerFor, settingsFor, type Gateway } from '../context.js';
import { problem } from '../problems.js';

const hundredths = (x: number) => Math.round(x * 100) / 100;

export function accountRouter(g: Gateway): Router {
  const r = Router();
  r.get('/usage', async (_req, res) => {
    const s = settingsFor(res);
    const owner = ownerFor(res) ?? null;
    const limits = g.submitter.limits;
    const minutes = limits ? await limits.minutes(owner, s.audio_minutes_per_day ?? Number.POSITIVE_INFINITY) : undefined;
    const active = limits && s.max_concurrent_jobs ? await limits.activeJobs(owner, s.max_concurrent_jobs) : null;
    const usedMin = (minutes?.usedSec ?? 0) / 60;
    const { policy, state } = rateLimitFields(s, { activeJobs: active ?? undefined, leftSec: minutes?.leftSec });
    if (policy.length) res.set({ 'ratelimit-policy': policy.join(', '), ratelimit: state.join(', ') });
    res.json({
      day: new Date().toISOString().slice(0, 10),
      limits: { max_concurrent_jobs: s.max_concurrent_jobs ?? null, audio_minutes_per_day: s.audio_minutes_per_day ?? null, requests_per_sec: s.requests_per_sec ?? null },
      usage: {
        active_jobs: active,
        jobs_today: minutes?.jobs ?? 0,
        audio_minutes_today: hundredths(usedMin),
        audio_minutes_left: s.audio_minutes_per_day ? Math.max(0, hundredths(s.audio_minutes_per_day - usedMin)) : null,
      },
      resets_in_sec: secondsToUtcMidnight(),
    });
  });

  r.get('/webhooks/secret', (_req, res) => {
    if (!g.options.webhookSecret) throw problem('WEBHOOKS_DISABLED', 'this server sends no webhooks (it has no WEBHOOK_SECRET)');
    res.set('cache-control', 'no-store').json({ secret: webhookSecret(g.options.webhookSecret, ownerFor(res) ?? null), scheme: 'standard-webhooks-v1' });
  });
  return r;
}
