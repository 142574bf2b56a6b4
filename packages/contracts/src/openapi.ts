/** The OpenAPI 3.1 document, generated from the same zod schemas the gateway validates with. */
import { z } from 'zod';
import { JobCanceled, JobCompleted, JobFailed } from './events.js';
import { CreateJobResponse, ErrorBody, Health, JobList, JobView, SubmitForm, SubmitJson, UsageView, WebhookSecretView } from './http.js';
import { AUDIO_FORMATS, JOB_STATUSES, JobOptions, OutputStemName, STEM_NAMES } from './job.js';

const schema = (s: z.ZodType) => z.toJSONSchema(s, { target: 'draft-2020-12', unrepresentable: 'any', io: 'output' });
/** A request body: what a client may send (fields with defaults are optional). */
const requestSchema = (s: z.ZodType) => z.toJSONSchema(s, { target: 'draft-2020-12', unrepresentable: 'any', io: 'input' });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: string) => ({ 'application/json': { schema: ref(name) } });
const error = (description: string) => ({ description, content: json('Error') });
const idParam = { name: 'id', in: 'path', required: true, description: 'Job id (UUID).', schema: { type: 'string', format: 'uuid' } };
const stemParam = { name: 'stem', in: 'path', required: true, description: 'A stem of the job.', schema: { type: 'string', enum: [...OutputStemName.options] } };
const limited = (description: string) => ({
  description,
  headers: {
    'Retry-After': { description: 'Seconds to wait.', schema: { type: 'integer' } },
    RateLimit: { description: 'The limits that apply, draft-ietf-httpapi-ratelimit-headers: `"requests";r=0;t=1`.', schema: { type: 'string' } },
    'RateLimit-Policy': { description: 'Each limit of the key: `"requests";q=10;w=1, "concurrent-jobs";q=2, "audio-minutes";q=600;w=86400`.', schema: { type: 'string' } },
  },
  content: json('Error'),
});

/** What a webhook receiver gets: Standard Webhooks' envelope around the bus event. */
export const WebhookPayload = z.object({
  type: z.enum(['job.completed', 'job.failed', 'job.canceled']),
  timestamp: z.iso.datetime().describe('When the event happened (its occurredAt).'),
  data: z.discriminatedUnion('type', [JobCompleted, JobFailed, JobCanceled]).describe('The event exactly as on the bus (AsyncAPI document, /api/asyncapi.json).'),
});

/**
 * The multipart form: its fields are the gateway's form schema's, each typed as the job option it
 * becomes (a form sends text; `stems` is comma-separated), plus the file.
 */
function submitFormSchema() {
  const form = schema(SubmitForm) as { properties: Record<string, unknown> };
  const options = schema(JobOptions) as { properties: Record<string, unknown> };
  const properties: Record<string, unknown> = { file: { type: 'string', format: 'binary', description: 'Any audio (or video with audio): wav, flac, mp3, ogg, opus, m4a… (or send input_url instead).' } };
  for (const k of Object.keys(form.properties)) properties[k] = options.properties[k] ?? form.properties[k];
  properties.stems = { type: 'string', description: `Comma-separated subset of ${STEM_NAMES.join(', ')} (default: all).` };
  return { type: 'object', properties, additionalProperties: false };
}

export function openApiDocument(version = '0.1.0') {
  const auth = [{ bearer: [] }, {}];
  return {
    openapi: '3.1.0',
    info: {
      title: 'stemflow',
      version,
      description:
        'Upload a song, follow its progress, download its stems (drums, bass, other, vocals) separated by htdemucs. ' +
        'When the server sets API_KEYS, every call needs `Authorization: Bearer <key>` and a key sees only its own jobs.',
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Job: schema(JobView),
        JobList: schema(JobList),
        CreateJobResponse: schema(CreateJobResponse),
        Error: schema(ErrorBody),
        Health: schema(Health),
        Usage: schema(UsageView),
        WebhookSecret: schema(WebhookSecretView),
        WebhookPayload: schema(WebhookPayload),
      },
    },
    webhooks: {
      jobEnded: {
        post: {
          summary: "A job's end, POSTed to its callback_url (or its API key's webhook_url)",
          description:
            'Signed as the Standard Webhooks specification says: `webhook-signature` is `v1,` + base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` ' +
            "with the key's secret (GET /api/webhooks/secret). Verify with any Standard Webhooks library, reject timestamps more than 5 minutes off, and deduplicate on " +
            '`webhook-id` (the event id, the same on every attempt). Answer 2xx within WEBHOOK_TIMEOUT_SEC (15 s) to end the delivery; anything else is retried ' +
            '(about 5 s, 5 min, 30 min, 2 h, 5 h, 5 h), then given up: the job\'s `webhook.status` says `failed`. Redirects are not followed.',
          parameters: [
            { name: 'webhook-id', in: 'header', required: true, schema: { type: 'string' }, description: 'The event id: the same on every retry.' },
            { name: 'webhook-timestamp', in: 'header', required: true, schema: { type: 'integer' }, description: 'Seconds since the epoch, of this attempt.' },
            { name: 'webhook-signature', in: 'header', required: true, schema: { type: 'string' }, description: '`v1,<base64 signature>`' },
          ],
          requestBody: { required: true, content: json('WebhookPayload') },
          responses: { '2XX': { description: 'Delivered.' }, default: { description: 'Not delivered: retried later.' } },
        },
      },
    },
    security: auth,
    paths: {
      '/api/jobs': {
        post: {
          summary: 'Upload a song and start a separation job',
          parameters: [
            {
              name: 'Idempotency-Key',
              in: 'header',
              required: false,
              schema: { type: 'string', minLength: 1, maxLength: 255 },
              description: 'Makes a retry safe: the same key with the same request within 24 h answers the first job (header `Idempotent-Replayed: true`); with another request, 422.',
            },
          ],
          requestBody: {
            required: true,
            content: {
              'multipart/form-data': {
                schema: {
                  ...submitFormSchema(),
                  description: 'The audio in `file`, or its URL in `input_url`; options as text fields.',
                },
              },
              'application/json': { schema: { ...requestSchema(SubmitJson), description: 'Import by URL: `input_url`, and the options as JSON.' } },
            },
          },
          responses: {
            '201': { description: 'Accepted: the job exists and its job.created event is stored by the broker (or, with a replayed Idempotency-Key, the first job).', content: json('CreateJobResponse') },
            '400': error('Missing file, empty file, wrong field, invalid options, or a callback_url/input_url on a refused address (URL_REFUSED).'),
            '401': error('Missing or unknown API key.'),
            '413': error('Larger than MAX_UPLOAD_BYTES.'),
            '415': error('Not audio or video.'),
            '422': error('The Idempotency-Key was used for another request (IDEMPOTENCY_KEY_REUSED), or the input_url could not be fetched (IMPORT_FAILED, UPSTREAM_TIMEOUT, UPSTREAM_UNREACHABLE).'),
            '429': limited("Over one of the key's limits: concurrent jobs (CONCURRENCY_LIMIT), audio minutes today (QUOTA_EXCEEDED), requests per second (RATE_LIMITED)."),
            '503': error('The store, database or broker is unavailable; nothing was kept.'),
          },
        },
        get: {
          summary: 'List jobs, newest first',
          parameters: [
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
            { name: 'cursor', in: 'query', schema: { type: 'string' }, description: 'next_cursor of the previous page.' },
            { name: 'status', in: 'query', schema: { type: 'string', enum: [...JOB_STATUSES] } },
          ],
          responses: { '200': { description: 'A page of jobs.', content: json('JobList') }, '400': error('Bad query.'), '401': error('Missing or unknown API key.') },
        },
      },
      '/api/jobs/{id}': {
        parameters: [idParam],
        get: {
          summary: 'A job: status, stage, progress, ETA and stem links',
          responses: { '200': { description: 'The job.', content: json('Job') }, '400': error('Not a job id.'), '404': error('No such job.') },
        },
        delete: {
          summary: 'Cancel the job if it runs, then delete its files and record',
          responses: { '204': { description: 'Deleted.' }, '400': error('Not a job id.'), '404': error('No such job.') },
        },
      },
      '/api/jobs/{id}/cancel': {
        parameters: [idParam],
        post: {
          summary: 'Cancel a pending or running job (honoured between chunks)',
          responses: { '202': { description: 'Cancel requested.', content: json('Job') }, '404': error('No such job.'), '409': error('The job already ended.') },
        },
      },
      '/api/jobs/{id}/events': {
        parameters: [idParam],
        get: {
          summary: 'Server-Sent Events: `progress` while it runs, then `completed`, `failed` or `canceled`, then the stream closes',
          responses: { '200': { description: 'text/event-stream; each data line is a Job.', content: { 'text/event-stream': { schema: { type: 'string' } } } }, '404': error('No such job.') },
        },
      },
      '/api/jobs/{id}/stems/{stem}': {
        parameters: [idParam, stemParam],
        get: {
          summary: 'Download one stem (Range supported), or a redirect to a presigned object-store URL; while a job whose stems stream runs, the stem as it is made',
          description:
            'A completed job: the stem file. A running job with `clip=clamp` (its `live_stems`): the response starts with what is final now and stays open, ' +
            'each new piece sent as the separator stores it, until the stem is complete — the same bytes as the finished file (`X-Stemflow-Live: true`, `Cache-Control: no-store`). ' +
            'A WAV states its final length from the first byte (`Content-Length`, and one `Range` for seeking: bytes not yet made are sent when they are); FLAC has no length. ' +
            'The response waits for the separator to start the stem; it is cut (not ended) if the job fails, is canceled or deleted, so a client never takes a partial file for a whole one.',
          responses: {
            '200': { description: 'The audio (growing, for a running job).', headers: { 'X-Stemflow-Live': { description: '`true` when the stem is still being made.', schema: { type: 'string' } } }, content: { 'audio/*': { schema: { type: 'string', format: 'binary' } } } },
            '206': { description: 'A byte range of it.' },
            '302': { description: 'Redirect to a presigned URL (S3 store; completed jobs).' },
            '404': error('No such job or stem, or the job is running with clip=rescale (its stems are written when it completes), or it failed.'),
            '416': error('Range not satisfiable.'),
          },
        },
      },
      '/api/jobs/{id}/stems/{stem}/peaks': {
        parameters: [idParam, stemParam],
        get: {
          summary: "The stem's waveform: min and max per block of samples, at a zoom level",
          description:
            'The JSON waveform format of BBC audiowaveform, version 2 (read as is by peaks.js and waveform-data.js): `data` holds, per block of `samples_per_pixel` frames, ' +
            'the minimum then the maximum sample over both channels as signed 16-bit values. For wavesurfer.js pass `data.map(v => v / 32768)` as `peaks` with the duration. ' +
            'Computed once from the stem (every level, one decode, streamed), then kept; each coarser level is the finest merged.',
          parameters: [{ name: 'samples_per_pixel', in: 'query', schema: { type: 'integer', enum: [256, 512, 1024, 2048, 4096, 8192, 16384], default: 1024 } }],
          responses: {
            '200': { description: 'The peaks.', content: { 'application/json': { schema: { type: 'object', required: ['version', 'channels', 'sample_rate', 'samples_per_pixel', 'bits', 'length', 'data'], properties: { version: { const: 2 }, channels: { const: 1 }, sample_rate: { type: 'integer' }, samples_per_pixel: { type: 'integer' }, bits: { const: 16 }, length: { type: 'integer', description: 'Blocks.' }, data: { type: 'array', items: { type: 'integer', minimum: -32768, maximum: 32767 }, description: 'min, max per block.' } } } } } },
            '400': error('Not a level the server keeps.'),
            '404': error('No such job or stem, or the job is not completed.'),
          },
        },
      },
      '/api/jobs/{id}/mix': {
        parameters: [idParam],
        get: {
          summary: 'A mixdown of some stems with gains, rendered by the server (e.g. karaoke: every stem but vocals)',
          description:
            'Rendered once per request (stems, gains, format), then kept with the job; served like a stem (Range, or a presigned redirect). The sum is made in float: ' +
            '`f32` keeps it exactly; other formats are lowered to peak at full scale when the sum would go over it (the job\'s `clip: rescale`), or clipped (`clamp`).',
          parameters: [
            { name: 'stems', in: 'query', schema: { type: 'string' }, description: 'Comma-separated stems of the job to mix (default: all).' },
            { name: 'gains', in: 'query', schema: { type: 'string' }, description: 'Linear gains, `stem:value` pairs from 0 to 4, comma-separated (default 1: as separated), e.g. `bass:0.5`.' },
            { name: 'format', in: 'query', schema: { type: 'string', enum: [...AUDIO_FORMATS] }, description: "The file's format (default: the job's)." },
          ],
          responses: {
            '200': { description: 'The mix.', content: { 'audio/*': { schema: { type: 'string', format: 'binary' } } } },
            '206': { description: 'A byte range of it.' },
            '302': { description: 'Redirect to a presigned URL (S3 store).' },
            '400': error('A stem the job lacks or named twice, a gain out of range, an unknown format.'),
            '404': error('No such job, or it is not completed.'),
          },
        },
      },
      '/api/jobs/{id}/stems.zip': {
        parameters: [idParam],
        get: { summary: 'All stems in one zip (streamed)', responses: { '200': { description: 'application/zip' }, '404': error('No such job, or not completed.') } },
      },
      '/api/usage': {
        get: {
          summary: "The calling key's limits, and what it used today (UTC)",
          responses: { '200': { description: 'Limits and use.', content: json('Usage') }, '401': error('Missing or unknown API key.') },
        },
      },
      '/api/webhooks/secret': {
        get: {
          summary: "The secret the calling key's webhooks are signed with (whsec_…, Standard Webhooks)",
          responses: { '200': { description: 'The secret.', content: json('WebhookSecret') }, '401': error('Missing or unknown API key.'), '404': error('This server sends no webhooks (no WEBHOOK_SECRET).') },
        },
      },
      '/api/health': {
        get: {
          summary: 'Each dependency (broker, store, database)',
          security: [],
          responses: { '200': { description: 'All up.', content: json('Health') }, '503': { description: 'Something is down.', content: json('Health') } },
        },
      },
    },
  };
}
