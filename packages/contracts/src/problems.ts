/**
 * Every error the HTTP API answers, as RFC 9457 problem details: one catalogue of codes, each with
 * the status it is sent with and its title (the same for every occurrence; `detail` says what
 * happened this time). The gateway's error mapper, the OpenAPI document, `GET /api/problems` and
 * docs/api.md are made from this table, so a code cannot be sent that is not documented.
 */
import { z } from 'zod';

type Entry = { status: number; title: string };

export const PROBLEMS = {
  // The request itself
  BAD_REQUEST: { status: 400, title: 'The request is malformed' },
  INVALID_BODY: { status: 400, title: 'The JSON body could not be parsed' },
  BODY_TOO_LARGE: { status: 413, title: 'The JSON body is larger than this server reads (16 KiB)' },
  INVALID_JOB_ID: { status: 400, title: 'The path does not hold a job id (a UUID)' },
  INVALID_QUERY: { status: 400, title: 'A query parameter is unknown or out of range' },
  INVALID_CURSOR: { status: 400, title: 'The cursor is not one this server gave out' },
  NOT_FOUND: { status: 404, title: 'No such endpoint' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'The endpoint does not take this method' },
  UNAUTHENTICATED: { status: 401, title: 'An API key is missing or unknown' },
  // Limits
  RATE_LIMITED: { status: 429, title: 'Too many requests per second for this API key' },
  CONCURRENCY_LIMIT: { status: 429, title: 'This API key has as many jobs running as it may' },
  QUOTA_EXCEEDED: { status: 429, title: "This API key has used today's audio minutes" },
  TOO_MANY_CONNECTIONS: { status: 503, title: 'Too many connections are open' },
  // Submitting a job
  NOT_MULTIPART: { status: 415, title: 'A job is submitted as multipart/form-data (a file) or JSON (input_url)' },
  MISSING_FILE: { status: 400, title: 'Neither a file nor input_url was sent' },
  INPUT_TWICE: { status: 400, title: 'Both a file and input_url were sent' },
  EMPTY_FILE: { status: 400, title: 'The uploaded file is empty' },
  UNEXPECTED_FILE: { status: 400, title: 'A file came in a field other than "file", or more than one' },
  TOO_MANY_PARTS: { status: 400, title: 'The form has too many parts' },
  TOO_MANY_FIELDS: { status: 400, title: 'The form has too many fields' },
  FIELD_TOO_LONG: { status: 400, title: 'A form field is too long' },
  BAD_UPLOAD: { status: 400, title: 'The multipart body is malformed' },
  UPLOAD_ABORTED: { status: 400, title: 'The upload was interrupted' },
  UPLOAD_TOO_LARGE: { status: 413, title: 'The file is larger than MAX_UPLOAD_BYTES' },
  NOT_AUDIO: { status: 415, title: 'The file is not audio or video this server decodes' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'The file is of a kind this server does not decode' },
  REQUEST_TIMEOUT: { status: 408, title: 'The request did not arrive in time' },
  UPLOAD_TOO_SLOW: { status: 408, title: 'The upload is slower than this server accepts' },
  INVALID_OPTIONS: { status: 400, title: 'A job option is unknown or invalid' },
  COST_LIMIT: { status: 400, title: 'The options ask for more model runs than this server allows per job' },
  INVALID_IDEMPOTENCY_KEY: { status: 400, title: 'Idempotency-Key must be 1 to 255 visible ASCII characters' },
  IDEMPOTENCY_UNSUPPORTED: { status: 400, title: 'This server keeps no idempotency keys' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, title: 'The Idempotency-Key was used for another request' },
  CALLBACK_UNSUPPORTED: { status: 400, title: 'This server sends no webhooks: callback_url is refused' },
  INVALID_URL: { status: 400, title: 'Not an http(s) URL' },
  URL_REFUSED: { status: 400, title: 'The URL points to an address this server does not reach' },
  URL_UNRESOLVED: { status: 422, title: 'The URL names a host that does not resolve' },
  // A job and its files
  JOB_NOT_FOUND: { status: 404, title: 'No such job' },
  JOB_FINISHED: { status: 409, title: 'The job already ended' },
  JOB_NOT_COMPLETED: { status: 409, title: 'The job has not completed: it has no stems yet' },
  STEM_NOT_FOUND: { status: 404, title: 'The job has no such stem' },
  INVALID_MIX: { status: 400, title: 'The mix names a stem the job lacks, twice, or a gain out of range' },
  RANGE_NOT_SATISFIABLE: { status: 416, title: 'The range asks for bytes past the end of the file' },
  WEBHOOKS_DISABLED: { status: 404, title: 'This server sends no webhooks (it has no WEBHOOK_SECRET)' },
  // The server
  RENDERS_BUSY: { status: 503, title: 'The server is rendering as many waveforms and mixes as it can' },
  DEPENDENCY_UNAVAILABLE: { status: 503, title: 'The broker, store or database is unavailable' },
  INTERNAL: { status: 500, title: 'Something went wrong on the server' },
} as const satisfies Record<string, Entry>;

export type ProblemCode = keyof typeof PROBLEMS;
export const PROBLEM_CODES = Object.keys(PROBLEMS) as ProblemCode[];
export const isProblemCode = (c: string): c is ProblemCode => Object.hasOwn(PROBLEMS, c);

/** The `type` of a problem: where its description is served (relative to the API's origin). */
export const problemType = (code: ProblemCode) => `/api/problems/${code}`;

/**
 * Why a job failed (`error_code` of a failed job, `code` of job.failed): not an HTTP answer, but
 * part of the same catalogue. Each reason is the sentence's subject; the job's `error_message` is
 * the sentence itself.
 */
export const JOB_ERRORS = {
  URL_REFUSED: 'The input_url (or a redirect from it) points to an address this server does not reach',
  URL_UNRESOLVED: "The input_url's host does not resolve",
  IMPORT_FAILED: 'The input_url answered an error status, or redirected more than 5 times',
  IMPORT_TIMEOUT: 'The file at the input_url did not arrive whole within IMPORT_TIMEOUT_SEC',
  IMPORT_UNREACHABLE: 'The input_url could not be reached',
  INPUT_TOO_LARGE: 'The file at the input_url is larger than MAX_UPLOAD_BYTES',
  NOT_AUDIO: 'The file is not audio or video this server decodes',
  UNSUPPORTED_MEDIA_TYPE: 'The file is of a kind this server does not decode',
  NO_AUDIO_STREAM: 'The file has no audio track',
  EMPTY_FILE: 'The file is empty',
  EMPTY_AUDIO: 'The file holds no audio samples',
  TOO_LONG: 'The audio is longer than MAX_DURATION_SEC',
  WINDOW_OUTSIDE: 'The preview window starts after the end of the audio',
  QUOTA_EXCEEDED: "The audio is longer than what was left of the API key's minutes today",
  COST_LIMIT: 'The job would take more model runs than the server allows',
  PROBE_TIMEOUT: 'Reading the file took too long',
  DECODE_TIMEOUT: 'Decoding took longer than DECODE_TIMEOUT_SEC',
  DECODE_STALLED: 'Decoding stopped making progress',
  INPUT_GONE: 'The uploaded file is no longer stored',
  REUSE_UNLISTED: 'The job to reuse came without its stems',
  REUSE_GONE: 'The job whose stems were to be reused is gone',
  OPTIONS_MISSING: 'The job reached the separator without its options',
  MODEL_MISSING: 'The model file is missing',
  MODEL_MISMATCH: 'The model file is not the verified htdemucs',
  MODEL_UNAVAILABLE: 'The model could not be loaded',
  MODEL_FAILED: 'The model failed while separating',
  CUDA_UNAVAILABLE: 'SEPARATOR_DEVICE=cuda, but CUDA is not available',
  PCM_SHORT: 'The decoded audio is shorter than its job says',
  CHECKPOINT_MISSING: "A resumed job's checkpoint is gone",
  RESAMPLE_FAILED: 'The stems could not be resampled',
  ENCODE_FAILED: 'A stem could not be encoded',
  STEM_TOO_LONG: 'A stem came out longer than its job says',
  FFMPEG_MISSING: 'ffmpeg is not installed where the job ran',
  INVALID_EVENT: 'A message on the bus did not match its contract',
  GAVE_UP: 'A stage failed every delivery attempt (the message was parked)',
} as const;

/** RFC 9457 problem details, with this API's stable `code`. */
export const Problem = z
  .object({
    type: z.string().describe('A URI reference naming the problem type; GET it (relative to the server) for its description.'),
    title: z.string().describe("The problem type's summary: the same for every occurrence of the code."),
    status: z.int().min(400).max(599).describe('The HTTP status, repeated.'),
    detail: z.string().describe('What is wrong this time, for a person. Never a server path or an internal host.'),
    instance: z.string().describe('The request path that failed.'),
    code: z.enum(PROBLEM_CODES as [ProblemCode, ...ProblemCode[]]).describe('Stable machine-readable code (match on it, not on the text).'),
  })
  .describe('RFC 9457 problem details (application/problem+json). Fields may be added.');
export type Problem = z.infer<typeof Problem>;

/** One entry of `GET /api/problems`. */
export const ProblemType = z.object({
  code: z.string(),
  status: z.int(),
  title: z.string(),
  type: z.string(),
});
export const ProblemCatalogue = z.object({
  problems: z.array(ProblemType).describe('Every code an HTTP answer can carry.'),
  job_errors: z.array(z.object({ code: z.string(), title: z.string() })).describe("Every error_code a failed job can carry."),
});

export const problemCatalogue = (): z.infer<typeof ProblemCatalogue> => ({
  problems: PROBLEM_CODES.map((code) => ({ code, ...PROBLEMS[code], type: problemType(code) })),
  job_errors: Object.entries(JOB_ERRORS).map(([code, title]) => ({ code, title })),
});
