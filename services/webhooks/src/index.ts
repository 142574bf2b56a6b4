/**
 * The webhook service: every job's end (completed, failed, canceled) POSTed to the job's webhook,
 * signed as Standard Webhooks says. The bus does the retrying: a failed attempt goes back through
 * the queue's retry levels, and after the last one the message is parked in the `.dlq` and the
 * job's record says the delivery failed. The `webhook-id` is the event id, the same on every attempt.
 */
import { QUEUES, StemflowError, describeError, type EventOf, type QueueSpec } from '@stemflow/contracts';
import { newEvent, retryLevel, type DeliveryContext, type EventBus } from '@stemflow/bus';
import { request, redactUrl, webhookSecret, type AddressPolicy } from '@stemflow/net';
import { readWebhookTarget, type BlobStore } from '@stemflow/storage';
import { webhookAttempts, type Logger } from '@stemflow/telemetry';
import { Webhook } from 'standardwebhooks';

type Ending = EventOf<'job.completed'> | EventOf<'job.failed'> | EventOf<'job.canceled'>;

export type WebhooksOptions = {
  secret: string;
  policy: AddressPolicy;
  timeoutMs: number;
  /** Tests run with short retry levels. */
  queue?: QueueSpec;
};

/** The receiver's answer body is read up to this, for the record; the rest is discarded. */
const MAX_ANSWER_BYTES = 4096;


/** The body a receiver gets: Standard Webhooks' envelope around the event exactly as on the bus. */
const webhookBody = (e: Ending) => JSON.stringify({ type: e.type, timestamp: e.occurredAt, data: e });

export async function startWebhooks(deps: { bus: EventBus; blobs: BlobStore; log: Logger }, options: WebhooksOptions) {
  const spec = options.queue ?? QUEUES.webhooks;
  const signers = new Map<string, Webhook>();
  const signer = (owner: string | null) => {
    const k = owner ?? '';
    let s = signers.get(k);
    if (!s) signers.set(k, (s = new Webhook(webhookSecret(options.secret, owner))));
    return s;
  };

  const deliver = async (e: Ending, ctx: DeliveryContext) => {
    const target = await readWebhookTarget(deps.blobs, e.jobId);
    if (!target) return; // no webhook for this job (or the job was deleted)
    const shown = redactUrl(target.url);
    const body = webhookBody(e);
    const now = new Date();
    const report = (outcome: 'delivered' | 'failed' | 'retrying', extra: { status?: number; reason?: string; nextAttemptAt?: string }) =>
      deps.bus.publish(newEvent('job.webhook', e.jobId, { outcome, event: e.type, webhookId: e.id, url: shown, attempts: ctx.attempt, ...extra }));
    let status: number | undefined;
    try {
      const res = await request(target.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': e.id,
          'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
          'webhook-signature': signer(target.owner).sign(e.id, now, body),
        },
        body,
        timeoutMs: options.timeoutMs,
        maxRedirects: 0, // a receiver answers where it was asked; a redirect is not a delivery
        policy: options.policy,
      });
      status = res.status;
      const answer = await readSome(res.body, MAX_ANSWER_BYTES);
      if (status >= 200 && status < 300) {
        ctx.log.info({ url: shown, status, attempt: ctx.attempt }, 'webhook delivered');
        webhookAttempts.inc({ outcome: 'delivered' });
        await report('delivered', { status });
        return;
      }
      throw new StemflowError('WEBHOOK_REJECTED', `the receiver answered HTTP ${status}${answer ? `: ${answer.slice(0, 200)}` : ''}`, { retryable: true });
    } catch (err) {
      const reason = describeError(err);
      // An address the guard refuses stays refused: recorded now, not retried for hours.
      const permanent = err instanceof StemflowError && err.code === 'URL_REFUSED';
      webhookAttempts.inc({ outcome: permanent || ctx.attempt >= spec.retry.maxAttempts ? 'failed' : 'retry' });
      const answered = status !== undefined ? { status } : {};
      if (permanent || ctx.attempt >= spec.retry.maxAttempts) {
        await report('failed', { ...answered, reason });
        if (permanent) return void ctx.log.warn({ url: shown, reason }, 'webhook refused, not retried');
      } else {
        // Recorded on the job as it happens: the attempt, what the receiver said, when the next comes.
        const nextAttemptAt = new Date(Date.now() + retryLevel(spec, ctx.attempt)).toISOString();
        await report('retrying', { ...answered, reason, nextAttemptAt }).catch((err: Error) => ctx.log.warn({ err: err.message }, 'could not record the failed attempt'));
      }
      // Whatever else went wrong (an answer, a timeout, a reset) may go right later: the bus retries.
      throw new StemflowError(err instanceof StemflowError ? err.code : 'WEBHOOK_UNDELIVERED', reason, { retryable: true });
    }
  };

  const sub = await deps.bus.subscribe(spec, { 'job.completed': deliver, 'job.failed': deliver, 'job.canceled': deliver });
  return { stop: () => sub.close() };
}

async function readSome(body: NodeJS.ReadableStream & { destroy: () => void }, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body) {
      chunks.push(c as Buffer);
      n += (c as Buffer).length;
      if (n >= max) break;
    }
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).subarray(0, max).toString('utf8').trim();
}
