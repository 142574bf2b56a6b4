/**
 * Sending stored files the way HTTP caches and players expect: a strong ETag and Last-Modified
 * (finished files never change), If-None-Match → 304, one Range (If-Range honoured), or a
 * redirect to a presigned store URL when the store gives one.
 */
import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import { parse as parseRange } from 'range-parser';
import { contentDisposition, type BlobStore } from '@stemflow/storage';
import { problem } from './problems.js';

export const MIME = { wav: 'audio/wav', flac: 'audio/flac', mp3: 'audio/mpeg' } as const;
export type FileExt = keyof typeof MIME;

/** A strong entity tag made of what identifies the bytes. */
export const etagOf = (...parts: (string | number)[]) => `"${createHash('sha256').update(parts.join('\0')).digest('base64url').slice(0, 27)}"`;

/** Finished files are never rewritten: a cache may keep them as long as it likes (per user). */
export const IMMUTABLE = 'private, max-age=31536000, immutable';

/**
 * Sets the validators, and answers 304 when the client's copy is current (If-None-Match).
 * Returns whether it answered.
 */
export function answeredNotModified(req: Request, res: Response, etag: string, modified?: Date): boolean {
  res.set('etag', etag);
  if (modified) res.set('last-modified', modified.toUTCString());
  const inm = req.get('if-none-match');
  if (!inm) return false;
  const match = inm.trim() === '*' || inm.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
  if (!match) return false;
  res.status(304).end();
  return true;
}

/** Whether If-Range (an ETag, or a date) still names this file: else the whole file is sent. */
function rangeStillValid(req: Request, etag: string | undefined, modified: Date | undefined): boolean {
  const v = req.get('if-range')?.trim();
  if (!v) return true;
  if (v.startsWith('"') || v.startsWith('W/')) return etag !== undefined && v === etag; // strong comparison only
  const at = Date.parse(v);
  return modified !== undefined && !Number.isNaN(at) && Math.floor(modified.getTime() / 1000) === Math.floor(at / 1000);
}

/**
 * The byte range a request asks for in a file of `total` bytes: one satisfiable range, or
 * undefined for the whole file (none asked, a malformed header, several ranges, or an If-Range
 * that no longer matches); 416 when it asks only for bytes past the end.
 */
export function rangeOf(req: Request, res: Response, total: number, validators: { etag?: string; modified?: Date } = {}): { start: number; end: number } | undefined {
  const header = req.get('range');
  if (!header || !rangeStillValid(req, validators.etag, validators.modified)) return undefined;
  const parsed = parseRange(total, header);
  if (parsed.type === 'bytes' && parsed.ranges.length === 0 && parsed.code & 2) {
    res.set('content-range', `bytes */${total}`);
    throw problem('RANGE_NOT_SATISFIABLE', `the file has ${total} bytes`);
  }
  return parsed.type === 'bytes' && parsed.code === 0 && parsed.ranges.length === 1 ? parsed.ranges[0]! : undefined;
}

export type StoredFile = { key: string; bytes: number; name: string; ext: FileExt; etag: string; modified: Date };

/** A finished file: 304, a redirect to a presigned URL (S3), or streamed whole or in one range. */
export async function sendStoredFile(req: Request, res: Response, blobs: BlobStore, presignSec: number, f: StoredFile): Promise<void> {
  res.set('cache-control', IMMUTABLE);
  if (answeredNotModified(req, res, f.etag, f.modified)) return;
  const r = rangeOf(req, res, f.bytes, f);
  const url = await blobs.presignGet(f.key, presignSec, f.name);
  if (url) return void res.redirect(302, url);
  res.set({ 'accept-ranges': 'bytes', 'content-type': MIME[f.ext], 'content-disposition': contentDisposition(f.name) });
  if (r) res.status(206).set({ 'content-range': `bytes ${r.start}-${r.end}/${f.bytes}`, 'content-length': String(r.end - r.start + 1) });
  else res.status(200).set('content-length', String(f.bytes));
  if (req.method === 'HEAD') return void res.end();
  const body = await blobs.get(f.key, r ? { start: r.start, end: r.end } : undefined);
  body.on('error', (err) => res.destroy(err)).pipe(res);
}
