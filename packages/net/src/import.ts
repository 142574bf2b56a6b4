/**
 * Opening a file a client named by URL: one guarded GET (every hop's address checked), redirects
 * followed a few times, refused at once when it answers an error or announces more than may be
 * stored. The caller streams the body (and must consume or destroy it); the deadline keeps running
 * over it.
 */
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import { StemflowError } from '@stemflow/contracts';
import type { AddressPolicy } from './index.js';
import { request } from './request.js';

export const MAX_IMPORT_REDIRECTS = 5;

export type ImportOptions = { policy: AddressPolicy; timeoutMs: number; maxBytes: number; signal?: AbortSignal | undefined };
export type OpenedImport = {
  body: Readable;
  /** The file's name: the response's Content-Disposition, else the last path segment of the final URL. */
  filename: string | undefined;
  /** What the source announced (Content-Length), if it did. */
  total: number | undefined;
  /** The final URL's origin (after redirects). */
  origin: string;
};

/**
 * Rejects with URL_REFUSED (an address refused at any hop), UPSTREAM_UNREACHABLE (no connection),
 * UPSTREAM_TIMEOUT, IMPORT_FAILED (an error status, or redirected too often) or UPLOAD_TOO_LARGE
 * (a Content-Length over maxBytes; a body that grows past it is the reader's to stop).
 */
export async function openImport(url: string, o: ImportOptions): Promise<OpenedImport> {
  const res = await request(url, { method: 'GET', timeoutMs: o.timeoutMs, maxRedirects: MAX_IMPORT_REDIRECTS, policy: o.policy, signal: o.signal, headers: { accept: 'audio/*, video/*;q=0.5, */*;q=0.1' } });
  const origin = new URL(res.url).origin;
  if (res.status < 200 || res.status >= 300) {
    res.body.destroy();
    throw new StemflowError(
      'IMPORT_FAILED',
      res.status >= 300 && res.status < 400 ? `${origin} redirected more than ${MAX_IMPORT_REDIRECTS} times` : `${origin} answered HTTP ${res.status}`,
      { status: 422 },
    );
  }
  const length = Number(res.headers['content-length']);
  const total = res.headers['content-length'] !== undefined && Number.isSafeInteger(length) && length >= 0 ? length : undefined;
  if (total !== undefined && total > o.maxBytes) {
    res.body.destroy();
    throw new StemflowError('UPLOAD_TOO_LARGE', `the file is ${total} bytes; this server accepts at most ${o.maxBytes}`, { status: 413 });
  }
  return { body: res.body, filename: dispositionName(res.headers['content-disposition']) ?? pathName(res.url), total, origin };
}

/** The last segment of a URL's path, decoded (undefined when there is none). */
export function pathName(url: string): string | undefined {
  const last = basename(new URL(url).pathname);
  if (!last) return undefined;
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

/** The file name a Content-Disposition header gives (filename* first), if any. */
export function dispositionName(h: string | undefined): string | undefined {
  if (!h) return undefined;
  const star = /filename\*\s*=\s*[^']*'[^']*'([^;]+)/i.exec(h);
  if (star) {
    try {
      return decodeURIComponent(star[1]!.trim());
    } catch {
      /* fall through */
    }
  }
  return /filename\s*=\s*"?([^";]+)"?/i.exec(h)?.[1]?.trim();
}
