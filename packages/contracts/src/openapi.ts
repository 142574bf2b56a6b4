/**
 * The OpenAPI document, generated from the same zod schemas the gateway validates with and
 * the problem catalogue its error mapper answers from: every status, header and error code a
 * route can send is declared here, so the document and the server cannot drift apart (a fuzzer
 * driven by this document runs in the suite). Its pieces: openapi-parts.ts.
 */
import { z } from 'zod';
import { JobCanceled, JobCompleted, JobFailed } from './events.js';
import { CreateJobResponse, DeletedEvent, Health, JobList, JobView, ListJobsQuery, MixQuery, PeaksQuery, UsageView, WebhookSecretView } from './http.js';
import { Problem, ProblemCatalogue, ProblemType } from './problems.js';
import { ANY, FILE_ERRORS, H, ONE_JOB, P, audio, binary, fileResponses, header, idParam, json, open, problems, queryParams, rateHeaders, schema, sseEvents, stemParam, submitFormSchema, submitJsonSchema } from './openapi-parts.js';

/** What a webhook receiver gets: Standard Webhooks' envelope around the bus event. */
export const WebhookPayload = z.object({
  type: z.enum(['job.completed', 'job.failed', 'job.canceled']),
  timestamp: z.iso.datetime().describe('When the event happened (its occurredAt).'),
  data: z.discriminatedUnion('type', [JobCompleted, JobFailed, JobCanceled]).describe('The event exactly as on the bus (AsyncAPI document, /api/asyncapi.json).'),
});

/** The document, made once per version (the gateway's routes, its 405 table and the docs script all read it). */
const made = new Map<string, ReturnType<typeof makeDocument>>();
export function openApiDocument(version = '0.1.0') {
  let doc = made.get(version);
  if (!doc) made.set(version, (doc = makeDocument(version)));
  return doc;
}

function makeDocument(version: string) {
  const auth = [{ bearer: [] }, {}];
  const tags = [
    { name: 'jobs', description: 'Submit, follow, cancel and delete separation jobs.' },
    { name: 'files', description: "A job's stems, waveforms and mixdowns." },
    { name: 'account', description: "The calling key's limits and webhook secret." },
    { name: 'meta', description: 'Health and the error catalogue.' },
  ];
  return {
    openapi: '3.2.0',
    info: {
      title: 'stemflow',
      version,
      summary: 'Separate songs into stems (drums, bass, other, vocals) with htdemucs.',
      description:
        'Upload a song, follow its progress, download its stems. When the server sets API_KEYS, every call under /api (but health and the problem catalogue) needs ' +
        '`Authorization: Bearer <key>`, and a key sees only its own jobs. Every error is an RFC 9457 problem (`application/problem+json`) with a stable `code`; ' +
        'GET /api/problems lists them all. A path the API lacks answers 404 `NOT_FOUND`, a method a path lacks 405 `METHOD_NOT_ALLOWED` with `Allow`.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [{ url: '/', description: 'The server that serves this document.' }],
    tags,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'One of the server\'s API_KEYS.' } },
      schemas: {
        Job: schema(JobView),
        JobList: schema(JobList),
        CreateJobResponse: schema(CreateJobResponse),
        Problem: schema(Problem),
        ProblemType: schema(ProblemType),
        ProblemCatalogue: schema(ProblemCatalogue),
        Health: schema(Health),
        Usage: schema(UsageView),
        WebhookSecret: schema(WebhookSecretView),
        WebhookPayload: open(schema(WebhookPayload)),
        DeletedEvent: schema(DeletedEvent),
        Peaks: {
          type: 'object',
          required: ['version', 'channels', 'sample_rate', 'samples_per_pixel', 'bits', 'length', 'data'],
          properties: {
            version: { const: 2 },
            channels: { const: 1 },
            sample_rate: { type: 'integer' },
            samples_per_pixel: { type: 'integer' },
            bits: { const: 16 },
            length: { type: 'integer', description: 'Blocks.' },
            data: { type: 'array', items: { type: 'integer', minimum: -32768, maximum: 32767 }, description: 'min, max per block.' },
          },
        },
      },
    },
    webhooks: {
      jobEnded: {
        post: {
          operationId: 'jobEnded',
          summary: "A job's end, POSTed to its callback_url (or its API key's webhook_url)",
          description:
            'Signed as the Standard Webhooks specification says: `webhook-signature` is `v1,` + base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}` ' +
            "with the key's secret (GET /api/webhooks/secret). Verify with any Standard Webhooks library, reject timestamps more than 5 minutes off, and deduplicate on " +
            '`webhook-id` (the event id, the same on every attempt). Answer 2xx within WEBHOOK_TIMEOUT_SEC (15 s) to end the delivery; anything else is retried ' +
            "(about 5 s, 5 min, 30 min, 2 h, 5 h, 5 h), then given up: the job's `webhook.status` says `failed`. Redirects are not followed. " +
            'Fields may be added to the payload: ignore those you do not know.',
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
          operationId: 'createJob',
          tags: ['jobs'],
          summary: 'Upload a song (or name its URL) and start a separation job',
          description:
            'The file is streamed to the store as it arrives and typed by its content; a `Content-Length` over MAX_UPLOAD_BYTES is refused before the body ' +
            '(`Expect: 100-continue` is answered 413, not 100). With `input_url` the answer comes at once (its address checked: public addresses only); the job\'s first stage, `importing`, ' +
            'fetches the file (within IMPORT_TIMEOUT_SEC, at most MAX_UPLOAD_BYTES, typed by its content; bytes so far in the job\'s `import`), and a source that fails makes the job fail with a code (URL_REFUSED, IMPORT_FAILED, IMPORT_TIMEOUT, INPUT_TOO_LARGE, NOT_AUDIO…).',
          parameters: [P.idempotencyKey],
          requestBody: {
            required: true,
            content: {
              'multipart/form-data': { schema: { ...submitFormSchema(), description: 'The audio in `file`, or its URL in `input_url` (exactly one); options as text fields.' } },
              'application/json': { schema: { ...submitJsonSchema(), description: 'Import by URL: `input_url`, and the options as JSON.' } },
            },
          },
          responses: {
            '201': {
              description: 'Accepted: the job exists and its job.created event is stored by the broker (or, with a replayed Idempotency-Key, the first job).',
              headers: { ...rateHeaders, Location: H.location, 'Idempotent-Replayed': header('`true` when this answers an earlier request with the same Idempotency-Key.') },
              content: json('CreateJobResponse'),
              links: Object.fromEntries(
                ['getJob', 'streamJobEvents', 'cancelJob', 'getStem', 'getStemPeaks', 'getMix', 'getStemsZip', 'deleteJob'].map((op) => [
                  op.charAt(0).toUpperCase() + op.slice(1),
                  { operationId: op, parameters: { id: '$response.body#/id' }, description: `The new job's ${op.replace(/^(get|stream|cancel|delete)/, '').replace(/([A-Z])/g, ' $1').trim().toLowerCase() || 'state'}.` },
                ]),
              ),
            },
            ...problems([
              ...ANY,
              'BAD_REQUEST', 'INVALID_BODY', 'BODY_TOO_LARGE', 'NOT_MULTIPART', 'MISSING_FILE', 'INPUT_TWICE', 'EMPTY_FILE', 'UNEXPECTED_FILE', 'TOO_MANY_PARTS', 'TOO_MANY_FIELDS', 'FIELD_TOO_LONG', 'BAD_UPLOAD', 'UPLOAD_ABORTED',
              'UPLOAD_TOO_LARGE', 'NOT_AUDIO', 'UNSUPPORTED_MEDIA_TYPE', 'REQUEST_TIMEOUT', 'UPLOAD_TOO_SLOW', 'INVALID_OPTIONS', 'COST_LIMIT', 'INVALID_IDEMPOTENCY_KEY', 'IDEMPOTENCY_UNSUPPORTED', 'IDEMPOTENCY_KEY_REUSED',
              'CALLBACK_UNSUPPORTED', 'INVALID_URL', 'URL_REFUSED', 'URL_UNRESOLVED',
              'CONCURRENCY_LIMIT', 'QUOTA_EXCEEDED',
            ]),
          },
        },
        get: {
          operationId: 'listJobs',
          tags: ['jobs'],
          summary: 'List jobs, newest first',
          parameters: queryParams(ListJobsQuery),
          responses: { '200': { description: 'A page of jobs.', headers: rateHeaders, content: json('JobList') }, ...problems([...ANY, 'INVALID_QUERY', 'INVALID_CURSOR']) },
        },
      },
      '/api/jobs/{id}': {
        parameters: [idParam],
        get: {
          operationId: 'getJob',
          tags: ['jobs'],
          summary: 'A job: status, stage, progress, ETA and stem links',
          responses: { '200': { description: 'The job.', headers: rateHeaders, content: json('Job') }, ...problems(ONE_JOB) },
        },
        delete: {
          operationId: 'deleteJob',
          tags: ['jobs'],
          summary: 'Cancel the job if it runs, then delete its files and record',
          description: 'From the answer on, every route of every gateway answers 404 for the job, and its open event streams and live stems end.',
          responses: { '204': { description: 'Deleted.', headers: rateHeaders }, ...problems(ONE_JOB) },
        },
      },
      '/api/jobs/{id}/cancel': {
        parameters: [idParam],
        post: {
          operationId: 'cancelJob',
          tags: ['jobs'],
          summary: 'Cancel a pending or running job (honoured between chunks)',
          responses: { '202': { description: 'Cancel requested: the job as it was; its `canceled` state follows on the event stream.', headers: rateHeaders, content: json('Job') }, ...problems([...ONE_JOB, 'JOB_FINISHED']) },
        },
      },
      '/api/jobs/{id}/events': {
        parameters: [idParam],
        get: {
          operationId: 'streamJobEvents',
          tags: ['jobs'],
          summary: 'Server-Sent Events: `progress` while it runs, then `completed`, `failed` or `canceled`, then the stream ends',
          description:
            "Each event's data is the Job. The first event is the job's state now; a `: keep-alive` comment comes every 15 s while nothing happens. " +
            "EventSource cannot send the API key: read the stream with fetch (the `@stemflow/client` package's `followJob` does, and resumes with Last-Event-ID).",
          parameters: [P.lastEventId],
          responses: {
            '200': {
              description: 'The stream (`text/event-stream`).',
              headers: { ...rateHeaders, 'Cache-Control': header('`no-cache`.') },
              content: { 'text/event-stream': { itemSchema: sseEvents() } },
            },
            '204': { description: "The client already has the job's last event (Last-Event-ID): nothing more will come; EventSource stops reconnecting.", headers: rateHeaders },
            ...problems(ONE_JOB),
          },
        },
      },
      '/api/jobs/{id}/stems/{stem}': {
        parameters: [idParam, stemParam],
        get: {
          operationId: 'getStem',
          tags: ['files'],
          summary: 'Download one stem; while a job whose stems stream runs, the stem as it is made',
          description:
            'A completed job: the stem file (Range, If-Range, If-None-Match; or a redirect to a presigned store URL). A running job with `clip=clamp` (its `live_stems`): the response ' +
            'starts with what is final now and stays open, each new piece sent as the separator stores it, until the stem is complete — the same bytes as the finished file ' +
            '(`X-Stemflow-Live: true`, `Cache-Control: no-store`). A WAV states its final length from the first byte (`Content-Length`, and one `Range` for seeking); FLAC and MP3 ' +
            'have no length. It is cut (not ended) if the job fails, is canceled or deleted, so a client never takes a partial file for a whole one.',
          parameters: [P.range, P.ifRange, P.ifNoneMatch],
          responses: { ...fileResponses('The audio (growing, for a running job).', audio, { 'X-Stemflow-Live': H.live }), ...problems([...FILE_ERRORS, 'STEM_NOT_FOUND', 'JOB_NOT_COMPLETED']) },
        },
      },
      '/api/jobs/{id}/stems/{stem}/peaks': {
        parameters: [idParam, stemParam],
        get: {
          operationId: 'getStemPeaks',
          tags: ['files'],
          summary: "The stem's waveform: min and max per block of samples, at a zoom level",
          description:
            'The JSON waveform format of BBC audiowaveform, version 2 (read as is by peaks.js and waveform-data.js): `data` holds, per block of `samples_per_pixel` frames, ' +
            'the minimum then the maximum sample over both channels as signed 16-bit values. For wavesurfer.js pass `data.map(v => v / 32768)` as `peaks` with the duration. ' +
            'Computed once from the stem (every level, one decode, streamed), then kept.',
          parameters: [...queryParams(PeaksQuery), P.ifNoneMatch],
          responses: {
            '200': { description: 'The peaks.', headers: { ...rateHeaders, ETag: H.etag, 'Cache-Control': H.cacheControl }, content: json('Peaks') },
            '304': { description: 'Not modified (If-None-Match).', headers: { ...rateHeaders, ETag: H.etag } },
            ...problems([...ONE_JOB, 'INVALID_QUERY', 'STEM_NOT_FOUND', 'JOB_NOT_COMPLETED', 'RENDERS_BUSY']),
          },
        },
      },
      '/api/jobs/{id}/mix': {
        parameters: [idParam],
        get: {
          operationId: 'getMix',
          tags: ['files'],
          summary: 'A mixdown of some stems with gains, rendered by the server (e.g. karaoke: every stem but vocals)',
          description:
            'Rendered once per request (stems, gains, format), then kept with the job; served like a stem. The sum is made in float: ' +
            '`f32` keeps it exactly; other formats are lowered to peak at full scale when the sum would go over it (the job\'s `clip: rescale`), or clipped (`clamp`).',
          parameters: [...queryParams(MixQuery), P.range, P.ifRange, P.ifNoneMatch],
          responses: { ...fileResponses('The mix.', audio), ...problems([...FILE_ERRORS, 'INVALID_QUERY', 'INVALID_MIX', 'JOB_NOT_COMPLETED', 'RENDERS_BUSY']) },
        },
      },
      '/api/jobs/{id}/stems.zip': {
        parameters: [idParam],
        get: {
          operationId: 'getStemsZip',
          tags: ['files'],
          summary: 'All stems in one zip (streamed, stored uncompressed)',
          parameters: [P.ifNoneMatch],
          responses: {
            '200': { description: 'The zip.', headers: { ...rateHeaders, ETag: H.etag, 'Last-Modified': H.lastModified, 'Content-Disposition': H.contentDisposition, 'Cache-Control': H.cacheControl }, content: { 'application/zip': { schema: binary('ZIP') } } },
            '304': { description: 'Not modified (If-None-Match).', headers: { ...rateHeaders, ETag: H.etag } },
            ...problems([...ONE_JOB, 'JOB_NOT_COMPLETED']),
          },
        },
      },
      '/api/usage': {
        get: {
          operationId: 'getUsage',
          tags: ['account'],
          summary: "The calling key's limits, and what it used today (UTC)",
          responses: { '200': { description: 'Limits and use.', headers: rateHeaders, content: json('Usage') }, ...problems(ANY) },
        },
      },
      '/api/webhooks/secret': {
        get: {
          operationId: 'getWebhookSecret',
          tags: ['account'],
          summary: "The secret the calling key's webhooks are signed with (whsec_…, Standard Webhooks)",
          responses: { '200': { description: 'The secret.', headers: { ...rateHeaders, 'Cache-Control': header('`no-store`.') }, content: json('WebhookSecret') }, ...problems([...ANY, 'WEBHOOKS_DISABLED']) },
        },
      },
      '/api/health': {
        get: {
          operationId: 'getHealth',
          tags: ['meta'],
          summary: 'Each dependency (broker, store, database)',
          security: [],
          responses: { '200': { description: 'All up.', content: json('Health') }, '503': { description: 'Something is down.', headers: { 'Retry-After': H.retryAfter }, content: json('Health') } },
        },
      },
      '/api/problems': {
        get: {
          operationId: 'listProblems',
          tags: ['meta'],
          summary: 'Every error code the API answers with (status and title), and every error_code a failed job can carry',
          security: [],
          responses: { '200': { description: 'The catalogue.', content: json('ProblemCatalogue') } },
        },
      },
      '/api/problems/{code}': {
        get: {
          operationId: 'getProblem',
          tags: ['meta'],
          summary: "A problem type: what a problem's `type` points to",
          security: [],
          parameters: [{ name: 'code', in: 'path', required: true, schema: { type: 'string', maxLength: 64 } }],
          responses: { '200': { description: 'The problem type.', content: json('ProblemType') }, ...problems(['NOT_FOUND']) },
        },
      },
    },
  };
}
