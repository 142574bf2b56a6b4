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

/**
 * The key an Authorization header carries, if it is one of the server's (bytes, not characters,
 * compared in constant time: digests of equal length whatever was sent); null when it carries none.
 */
export function keyOf(apiKeys: string[] | undefined): (authorization: string | undefined) => string | undefined | null {
  const digests = (apiKeys ?? []).map(sha256);
  return (authorization) => {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    if (!m) return null;
    const given = sha256(m[1]!);
    return digests.reduce((hit, k) => timingSafeEqual(k, given) || hit, false) ? m[1]! : undefined;
  };
}

export function authenticate(apiKeys: string[] | undefined, keySettings: Record<string, KeySettings> | undefined): RequestHandler {
  const known = keyOf(apiKeys);
  return (req, res, next) => {
    if (!apiKeys?.length) {
      res.locals.settings = { ...keySettings?.['*'] };
      return next();
    }
    const key = known(req.get('authorization'));
    if (key === null) throw problem('UNAUTHENTICATED', 'send an API key as "Authorization: Bearer <key>"');
    if (key === undefined) throw problem('UNAUTHENTICATED', 'unknown API key');
    res.locals.owner = ownerOf(key);
    res.locals.settings = { ...keySettings?.['*'], ...keySettings?.[key] };
    next();
  };
}
