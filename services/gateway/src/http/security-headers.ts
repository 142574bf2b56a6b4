/**
 * Security headers on every answer (helmet): a Content-Security-Policy that lets the page and the
 * API docs run only their own scripts — the served files, and the inline scripts by their hash —
 * `frame-ancestors 'none'`, `Referrer-Policy: no-referrer`, `X-Content-Type-Options: nosniff`.
 * Styles may be inline (the waveform library styles its own elements). HSTS is left to the TLS
 * terminator in front of the gateway, which knows whether the site is HTTPS.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RequestHandler } from 'express';
import helmet from 'helmet';
import { PUBLIC, swaggerPage } from './routes/meta.js';

/** The CSP source of each inline script of a page. */
const inlineScriptHashes = (html: string) =>
  [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => `'sha256-${createHash('sha256').update(m[1]!).digest('base64')}'`);

export function securityHeaders(crossOrigin: boolean): RequestHandler {
  const scripts = [...inlineScriptHashes(readFileSync(join(PUBLIC, 'index.html'), 'utf8')), ...inlineScriptHashes(swaggerPage)];
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'", ...scripts],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:', 'blob:'],
        mediaSrc: ["'self'", 'blob:'],
        fontSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        workerSrc: ["'self'", 'blob:'],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    referrerPolicy: { policy: 'no-referrer' },
    strictTransportSecurity: false,
    // Answers read by pages of other origins (CORS_ORIGINS) must not be withheld from them.
    crossOriginResourcePolicy: { policy: crossOrigin ? 'cross-origin' : 'same-origin' },
  });
}
