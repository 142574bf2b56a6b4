/**
 * The pieces the OpenAPI document is assembled from: JSON Schemas from the zod contracts, the
 * headers and parameters routes share, problem responses from the catalogue, the submit form's
 * rules, the event stream's items.
 */
import { z } from 'zod';
import { SubmitForm, SubmitJson } from './http.js';
import { JobOptions, OutputStemName, STEM_NAMES } from './job.js';
import { PROBLEMS, type ProblemCode } from './problems.js';

export type Json = Record<string, unknown>;
export const schema = (s: z.ZodType) => z.toJSONSchema(s, { target: 'draft-2020-12', unrepresentable: 'any', io: 'output' }) as Json;
/** A request body: what a client may send (fields with defaults are optional). */
export const requestSchema = (s: z.ZodType) => z.toJSONSchema(s, { target: 'draft-2020-12', unrepresentable: 'any', io: 'input' }) as Json;
export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
export const json = (name: string) => ({ 'application/json': { schema: ref(name) } });
export const binary = (description: string) => ({ type: 'string', contentMediaType: 'application/octet-stream', description });

/** A schema open to fields added later (the versioning rule: fields are only ever added). */
export function open(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(open);
  if (!s || typeof s !== 'object') return s;
  const out: Json = {};
  for (const [k, v] of Object.entries(s)) if (!(k === 'additionalProperties' && v === false)) out[k] = open(v);
  return out;
}

/** A query schema's properties as parameters: the route parses the query with the same schema. */
export function queryParams(s: z.ZodObject): Json[] {
  // Each value as the route takes it (after coercion: a level is one of its numbers); optional
  // where the client may leave it out (a default fills it).
  const out = schema(s) as { properties: Record<string, Json & { description?: string }> };
  const required = (requestSchema(s) as { required?: string[] }).required ?? [];
  return Object.entries(out.properties).map(([name, p]) => {
    const { description, ...rest } = p;
    return { name, in: 'query', required: required.includes(name), ...(description ? { description } : {}), schema: rest };
  });
}

export const header = (description: string, type: 'string' | 'integer' = 'string') => ({ description, schema: { type } });
export const H = {
  rateLimit: header('What is left of each limit of the key (draft-ietf-httpapi-ratelimit-headers), e.g. `"requests";r=9;t=1`. Sent when the key has limits.'),
  rateLimitPolicy: header('Each limit of the key: `"requests";q=10;w=1, "concurrent-jobs";q=2, "audio-minutes";q=600;w=86400`. Sent when the key has limits.'),
  retryAfter: header('Seconds to wait before trying again.', 'integer'),
  location: header('The job: `/api/jobs/{id}`.'),
  etag: header('A strong validator of the bytes: send it back in `If-None-Match` (304) or `If-Range`.'),
  lastModified: header('When the file was made.'),
  acceptRanges: header('`bytes`: one `Range` is honoured.'),
  contentRange: header('`bytes start-end/total` (206), or `bytes */total` (416).'),
  contentDisposition: header('`attachment` with the file name (song - stem.ext).'),
  cacheControl: header('`private, immutable` for finished files (they never change); `no-store` for a stem still being made.'),
  live: header('`true` when the stem is still being made (a running job whose stems stream).'),
  wwwAuthenticate: header('`Bearer`: the scheme to authenticate with.'),
};
export const rateHeaders = { RateLimit: H.rateLimit, 'RateLimit-Policy': H.rateLimitPolicy };

/** The error responses for these codes, grouped by status, each a problem restricted to its codes. */
export function problems(codes: ProblemCode[]): Record<string, Json> {
  const byStatus = new Map<number, ProblemCode[]>();
  for (const c of codes) byStatus.set(PROBLEMS[c].status, [...(byStatus.get(PROBLEMS[c].status) ?? []), c]);
  const out: Record<string, Json> = {};
  for (const [status, cs] of [...byStatus].sort(([a], [b]) => a - b)) {
    const headers: Json = { ...rateHeaders };
    if (status === 401) headers['WWW-Authenticate'] = H.wwwAuthenticate;
    if (status === 429 || status === 503) headers['Retry-After'] = H.retryAfter;
    if (status === 416) headers['Content-Range'] = H.contentRange;
    out[String(status)] = {
      description: cs.map((c) => `\`${c}\`: ${PROBLEMS[c].title}.`).join(' '),
      headers,
      content: { 'application/problem+json': { schema: { allOf: [ref('Problem'), { type: 'object', properties: { status: { const: status }, code: { enum: cs } } }] } } },
    };
  }
  return out;
}

/** Every operation under /api may answer these. */
export const ANY: ProblemCode[] = ['UNAUTHENTICATED', 'RATE_LIMITED', 'DEPENDENCY_UNAVAILABLE'];
/** Every operation on one job. */
export const ONE_JOB: ProblemCode[] = [...ANY, 'INVALID_JOB_ID', 'JOB_NOT_FOUND'];
export const FILE_ERRORS: ProblemCode[] = [...ONE_JOB, 'RANGE_NOT_SATISFIABLE'];

export const idParam = { name: 'id', in: 'path', required: true, description: 'Job id (a UUID; any case).', schema: { type: 'string', format: 'uuid' } };
export const stemParam = { name: 'stem', in: 'path', required: true, description: 'A stem of the job.', schema: { type: 'string', enum: [...OutputStemName.options] } };
export const reqHeader = (name: string, description: string, s: Json = { type: 'string' }) => ({ name, in: 'header', required: false, description, schema: s });
export const P = {
  // Validators and ranges a server cannot use are ignored (RFC 9110): the whole file is sent.
  range: reqHeader('Range', 'One byte range, e.g. `bytes=0-1023` (several ranges, or one the server cannot read: the whole file is sent).'),
  ifRange: reqHeader('If-Range', 'An ETag (or Last-Modified date) of the file: the range is sent only if it is still that file, else the whole file.'),
  ifNoneMatch: reqHeader('If-None-Match', 'ETags of copies the client has: 304 when the file is one of them.'),
  idempotencyKey: reqHeader('Idempotency-Key', 'Makes a retry safe: the same key with the same request within 24 h answers the first job (header `Idempotent-Replayed: true`); with another request, 422.', { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$' }),
  lastEventId: reqHeader('Last-Event-ID', "The `id` of the last event the client has (EventSource sends it when it reconnects): what it has is not sent again; if that was the job's last event, 204."),
};

/** A file response (stem, mix): 200 whole, 206 one range, 302 to the store, 304 not modified. */
export const fileResponses = (what: string, mime: Json, extra200: Json = {}) => ({
  '200': { description: what, headers: { ...rateHeaders, ETag: H.etag, 'Last-Modified': H.lastModified, 'Accept-Ranges': H.acceptRanges, 'Content-Disposition': H.contentDisposition, 'Cache-Control': H.cacheControl, ...extra200 }, content: mime },
  '206': { description: 'One byte range of it.', headers: { ...rateHeaders, 'Content-Range': H.contentRange, ETag: H.etag, 'Last-Modified': H.lastModified, 'Accept-Ranges': H.acceptRanges }, content: mime },
  '302': { description: 'A presigned URL of the object store (S3 store): GET it, no key needed.', headers: { ...rateHeaders, Location: header('The presigned URL (valid for an hour).') } },
  '304': { description: 'Not modified: the client has this file (If-None-Match).', headers: { ...rateHeaders, ETag: H.etag } },
});
export const audio = { 'audio/wav': { schema: binary('WAV') }, 'audio/flac': { schema: binary('FLAC') }, 'audio/mpeg': { schema: binary('MP3') } };


/**
 * The multipart form: its fields are the gateway's form schema's, each typed as the job option it
 * becomes (a form sends text; `stems` is comma-separated), plus the file. Exactly one of `file`
 * and `input_url`.
 */
export function submitFormSchema(): Json {
  const form = schema(SubmitForm) as { properties: Record<string, Json> };
  const options = schema(JobOptions) as { properties: Record<string, Json> };
  const properties: Record<string, unknown> = { file: { ...binary('Any audio (or video with audio): wav, flac, mp3, ogg, opus, m4a… Or send input_url instead.'), minLength: 1 } };
  for (const k of Object.keys(form.properties)) {
    const option = options.properties[k];
    // A text field with its own values (residual: "true" or "false") keeps the option's text, its default as text.
    properties[k] = form.properties[k]!.enum && option ? { ...option, ...form.properties[k], ...('default' in option ? { default: String(option.default) } : {}) } : (option ?? form.properties[k]);
  }
  const stem = `(${STEM_NAMES.join('|')})`;
  properties.stems = { type: 'string', maxLength: 200, pattern: `^${stem}(,${stem})*$`, description: `Comma-separated subset of ${STEM_NAMES.join(', ')} (default: all), each once.` };
  const only = (has: string, lacks: string) => ({ required: [has], properties: { [has]: {} }, not: { required: [lacks], properties: { [lacks]: {} } } });
  return { type: 'object', properties, additionalProperties: false, oneOf: [only('file', 'input_url'), only('input_url', 'file')], ...residualRule('string') };
}
/** residual needs other among the stems (or two_stems): the rule the options schema refines with. */
export const residualRule = (stems: 'string' | 'array') => ({
  if: { properties: { residual: { const: stems === 'string' ? 'true' : true } }, required: ['residual'] },
  then: {
    anyOf: [
      { required: ['two_stems'], properties: { two_stems: {} } },
      { not: { required: ['stems'], properties: { stems: {} } } },
      { properties: { stems: stems === 'string' ? { pattern: '(^|,)other(,|$)' } : { contains: { const: 'other' } } } },
    ],
  },
});
export function submitJsonSchema(): Json {
  const s = requestSchema(SubmitJson) as { properties: Record<string, Json> };
  s.properties.stems = { ...s.properties.stems, uniqueItems: true };
  return { ...s, ...residualRule('array') };
}

/** An SSE data line holding JSON of a schema (OpenAPI 3.2's way: a string whose content is described). */
export const jsonData = (name: string) => ({ type: 'string', contentMediaType: 'application/json', contentSchema: ref(name) });
/** Each SSE event: its name, its id, and the JSON of its data line (OpenAPI 3.2 `itemSchema`). */
export const sseEvents = () => ({
  description: 'One Server-Sent Event.',
  oneOf: [
    { type: 'object', required: ['event', 'data'], properties: { event: { const: 'progress' }, id: { type: 'string', description: "The state's updated_at: send it back as Last-Event-ID." }, data: jsonData('Job') } },
    { type: 'object', required: ['event', 'data'], properties: { event: { enum: ['completed', 'failed', 'canceled'] }, id: { type: 'string' }, data: jsonData('Job') }, description: 'The last event: the stream ends.' },
    { type: 'object', required: ['event', 'data'], properties: { event: { const: 'deleted' }, data: jsonData('DeletedEvent') }, description: 'The job was deleted while the stream was open: the stream ends.' },
  ],
});
