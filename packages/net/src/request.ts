/**
 * One guarded outbound request (webhook deliveries, imports): the address checked where the
 * connection is made, redirects followed and each hop checked again, one deadline over the whole
 * exchange, body included.
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { StemflowError } from '@stemflow/contracts';
import { checkUrl, guardedLookup, refusedError, type AddressPolicy } from './index.js';

export type OutboundRequest = {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Whole exchange, headers and body (the caller's stream included), within this. */
  timeoutMs: number;
  /** Redirects followed, each checked again (0: a 3xx is the answer). */
  maxRedirects?: number;
  policy: AddressPolicy;
  signal?: AbortSignal;
};

export type OutboundResponse = { status: number; headers: IncomingMessage['headers']; body: IncomingMessage; url: string };

/**
 * One guarded request. Resolves with the final response (its body unread: the caller streams it
 * and must consume or destroy it) once headers arrive; the deadline keeps running over the body.
 * Rejects with URL_REFUSED for a refused address at any hop, UPSTREAM_TIMEOUT, UPSTREAM_UNREACHABLE.
 */
export async function request(raw: string, o: OutboundRequest): Promise<OutboundResponse> {
  const deadline = AbortSignal.timeout(o.timeoutMs);
  const signal = o.signal ? AbortSignal.any([o.signal, deadline]) : deadline;
  let url = checkUrl(raw, o.policy);
  let method = o.method ?? 'GET';
  let body = o.body;
  for (let hop = 0; ; hop++) {
    const res = await once(url, method, o.headers ?? {}, body, o.policy, signal, deadline, o.timeoutMs);
    const location = res.headers.location;
    if (res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && location && hop < (o.maxRedirects ?? 0)) {
      res.resume();
      url = checkUrl(new URL(location, url).toString(), o.policy);
      if (res.statusCode === 303 || ((res.statusCode === 301 || res.statusCode === 302) && method === 'POST')) {
        method = 'GET';
        body = undefined;
      }
      continue;
    }
    // The deadline covers the body too: a slow body is cut, the reader sees the error.
    const onAbort = () => res.destroy(timeoutError(url, o.timeoutMs, deadline.aborted));
    signal.addEventListener('abort', onAbort, { once: true });
    res.once('close', () => signal.removeEventListener('abort', onAbort));
    return { status: res.statusCode ?? 0, headers: res.headers, body: res, url: url.toString() };
  }
}

const timeoutError = (url: URL, ms: number, byDeadline: boolean) =>
  byDeadline
    ? new StemflowError('UPSTREAM_TIMEOUT', `${url.origin} did not finish answering within ${Math.round(ms / 1000)} s`, { status: 422, retryable: true })
    : new StemflowError('UPSTREAM_ABORTED', `the request to ${url.origin} was abandoned`, { status: 400 });

function once(url: URL, method: string, headers: Record<string, string>, body: string | Buffer | undefined, policy: AddressPolicy, signal: AbortSignal, deadline: AbortSignal, timeoutMs: number): Promise<IncomingMessage> {
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(timeoutError(url, timeoutMs, deadline.aborted));
    const req = lib.request(
      url,
      {
        method,
        headers: { 'user-agent': 'stemflow/1', ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) },
        lookup: guardedLookup(policy),
        agent: false,
        ...(url.username ? { auth: `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` } : {}),
      },
      resolve,
    );
    const onAbort = () => req.destroy(timeoutError(url, timeoutMs, deadline.aborted));
    signal.addEventListener('abort', onAbort, { once: true });
    req.once('close', () => signal.removeEventListener('abort', onAbort));
    req.once('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof StemflowError) return reject(err);
      if (err.code === 'EREFUSED_ADDRESS') return reject(refusedError(url.origin, err.message));
      reject(new StemflowError('UPSTREAM_UNREACHABLE', `could not reach ${url.origin}: ${err.code ?? err.message}`, { status: 422, retryable: true }));
    });
    req.end(body);
  });
}

