/**
 * Authentication (when API_KEYS is set): every /api call but the public ones carries a bearer
 * key. Keys are compared as digests in constant time; a key's owner id and settings go on the
 * response's locals for the routes.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { KeySettings } from '@stemflow/config';
import { problem } from './problems.js';

export const ownerOf = (key: string) => `key-${createHash('sha256').update(key).digest('hex').slice(0, 24)}`;

const sha256 = (s: string) => createHash('sha256').update(s, 'latin1').digest();

export function authenticate(apiKeys: string[] | undefined, keySettings: Record<string, KeySettings> | undefined): RequestHandler {
  const digests = (apiKeys ?? []).map(sha256);
  return (req, res, next) => {
    if (!digests.length) {
      res.locals.settings = { ...keySettings?.['*'] };
      return next();
    }
    const m = /^Bearer\s+(\S+)$/i.exec(req.get('authorization') ?? '');
    if (!m) throw problem('UNAUTHENTICATED', 'send an API key as "Authorization: Bearer <key>"');
    // Bytes, not characters, compared in constant time: digests of equal length whatever was sent.
    const given = sha256(m[1]!);
    const ok = digests.reduce((hit, k) => timingSafeEqual(k, given) || hit, false);
    if (!ok) throw problem('UNAUTHENTICATED', 'unknown API key');
    res.locals.owner = ownerOf(m[1]!);
    res.locals.settings = { ...keySettings?.['*'], ...keySettings?.[m[1]!] };
    next();
  };
}
