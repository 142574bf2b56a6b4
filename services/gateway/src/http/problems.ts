/**
 * The one place errors become HTTP answers: RFC 9457 problem details (application/problem+json)
 * with a code from the catalogue in contracts, which also gives the status and the title. A code
 * the catalogue lacks is a bug: it is logged and answered as INTERNAL.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import multer from 'multer';
import { PROBLEMS, StemflowError, describeError, isProblemCode, problemType, type Problem, type ProblemCode } from '@stemflow/contracts';
import type { Logger } from '@stemflow/telemetry';

export const PROBLEM_JSON = 'application/problem+json; charset=utf-8';

/** An error of the catalogue, by code: its status is the catalogue's. */
export const problem = (code: ProblemCode, detail: string, extra: { retryAfterSec?: number; limits?: { policy: string[]; state: string[] } } = {}) =>
  new StemflowError(code, detail, { status: PROBLEMS[code].status, retryable: PROBLEMS[code].status >= 500, ...extra });

type Mapped = { code: ProblemCode; detail: string; error?: StemflowError };

const MULTER: Record<string, [ProblemCode, (e: multer.MulterError, max: number) => string]> = {
  LIMIT_FILE_SIZE: ['UPLOAD_TOO_LARGE', (_e, max) => `the file is larger than the ${max} bytes this server accepts`],
  LIMIT_UNEXPECTED_FILE: ['UNEXPECTED_FILE', (e) => `expected exactly one file, in the field "file" (got field "${String(e.field ?? '?').slice(0, 40)}")`],
  LIMIT_FILE_COUNT: ['UNEXPECTED_FILE', () => 'expected exactly one file, in the field "file"'],
  LIMIT_PART_COUNT: ['TOO_MANY_PARTS', () => 'too many form parts'],
  LIMIT_FIELD_COUNT: ['TOO_MANY_FIELDS', () => 'too many form fields'],
  LIMIT_FIELD_VALUE: ['FIELD_TOO_LONG', (e) => `the field "${String(e.field ?? '?').slice(0, 40)}" is too long`],
  LIMIT_FIELD_KEY: ['FIELD_TOO_LONG', () => 'a field name is too long'],
};

/** What an error is, as a code of the catalogue and a sentence for the client. */
export function classify(err: unknown, maxUploadBytes: number): Mapped {
  if (err instanceof StemflowError) {
    if (isProblemCode(err.code)) return { code: err.code, detail: err.message, error: err };
    return { code: 'INTERNAL', detail: 'something went wrong on the server; the error was logged' };
  }
  if (err instanceof multer.MulterError) {
    const [code, detail] = MULTER[err.code] ?? ['BAD_UPLOAD', () => 'the multipart body is malformed'];
    return { code, detail: detail(err, maxUploadBytes) };
  }
  const e = err as { status?: number; statusCode?: number; type?: string; message?: string };
  // body-parser's errors (express.json): a size over the limit, or JSON that does not parse.
  if (e.type === 'entity.too.large') return { code: 'BODY_TOO_LARGE', detail: 'the JSON body is larger than 16 KiB' };
  if (e.type === 'entity.parse.failed') return { code: 'INVALID_BODY', detail: 'the body is not valid JSON' };
  if (e.type === 'encoding.unsupported' || e.type === 'charset.unsupported') return { code: 'INVALID_BODY', detail: 'the body is in an encoding this server does not read (send UTF-8)' };
  if (/Unexpected end of form|Malformed part header|Multipart: Boundary not found|Malformed urlencoded form/i.test(e.message ?? '')) return { code: 'BAD_UPLOAD', detail: 'the multipart body is malformed or cut off' };
  const status = e.status ?? e.statusCode;
  if (status && status >= 400 && status < 500) return { code: 'BAD_REQUEST', detail: 'the request is malformed' };
  return { code: 'INTERNAL', detail: 'something went wrong on the server; the error was logged' };
}

export function problemBody(code: ProblemCode, detail: string, instance: string): Problem {
  const { status, title } = PROBLEMS[code];
  return { type: problemType(code), title, status, detail, instance, code };
}

/** Writes a problem on a plain response (no express needed: the server's own refusals use it too). */
export function sendProblem(req: IncomingMessage, res: ServerResponse, err: StemflowError, cb?: () => void): void {
  const code: ProblemCode = isProblemCode(err.code) ? err.code : 'INTERNAL';
  const body = JSON.stringify(problemBody(code, code === 'INTERNAL' ? 'something went wrong on the server' : err.message, pathOf(req)));
  res.writeHead(PROBLEMS[code].status, { 'content-type': PROBLEM_JSON, 'content-length': Buffer.byteLength(body) });
  res.end(body, cb);
}

/** The request's path (no query: it may carry what the client would not want echoed). */
const pathOf = (req: IncomingMessage) => ((req as Request).originalUrl ?? req.url ?? '/').split('?')[0]!.slice(0, 300);

/** Express's error handler: every error under the app becomes a problem. */
export function errorHandler(log: Logger, maxUploadBytes: number) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const m = classify(err, maxUploadBytes);
    const { status } = PROBLEMS[m.code];
    if (status >= 500 && m.code !== 'RENDERS_BUSY') log.error({ err: describeError(err), path: req.path }, 'request failed');
    if (res.headersSent) {
      if (!res.writableEnded) res.destroy(); // a stream cut mid-way; an answer already sent stands
      return;
    }
    // A file response may have set its headers before the error: none of them describe a problem.
    for (const h of ['content-disposition', 'content-length', 'accept-ranges', 'etag', 'last-modified', 'cache-control', 'x-stemflow-live']) res.removeHeader(h);
    if (m.code === 'UNAUTHENTICATED') res.set('www-authenticate', 'Bearer');
    const after = m.error?.retryAfterSec ?? (status === 503 ? 5 : undefined);
    if (after !== undefined) res.set('retry-after', String(after));
    if (m.error?.limits?.policy.length) res.set({ 'ratelimit-policy': m.error.limits.policy.join(', '), ratelimit: m.error.limits.state.join(', ') });
    // Over a limit: an upload's body is not read, the connection is not kept for more requests.
    if (status === 429) res.set('connection', 'close');
    res.status(status).type(PROBLEM_JSON).send(JSON.stringify(problemBody(m.code, m.detail, pathOf(req))));
  };
}
