/**
 * Every code an HTTP answer can carry is in the catalogue the OpenAPI document is made from:
 * each code thrown on the gateway's paths (its own code, the address guard, the upload sniffer)
 * is found in the sources and looked up. A code missing from the catalogue would be answered as
 * a 500, and undocumented.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROBLEMS, StemflowError } from '@stemflow/contracts';
import { describe, expect, it } from 'vitest';
import { classify, problemBody } from './problems.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
/** Codes that never reach a client: they end a stream that is already answered, or are internal to a use case. */
const NEVER_ANSWERED = new Set(['CLIENT_GONE', 'JOB_GONE', 'STEM_GONE', 'JOB_ENDED']);

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
}

describe('the problem catalogue', () => {
  it('holds every code the gateway, the address guard and the upload sniffer throw', () => {
    // The address guard (the gateway checks input_url and callback_url; the requests themselves are the decoder's and the webhook service's).
    const files = [...sources(join(root, 'services/gateway/src')), join(root, 'packages/net/src/index.ts'), join(root, 'packages/storage/src/store-checked.ts'), join(root, 'packages/audio/src/media.ts')];
    const codes = new Set<string>();
    for (const f of files) for (const m of readFileSync(f, 'utf8').matchAll(/(?:StemflowError|invalid|problem|tooMany)\(\s*'([A-Z_]+)'/g)) codes.add(m[1]!);
    expect(codes.size).toBeGreaterThan(30);
    const missing = [...codes].filter((c) => !(c in PROBLEMS) && !NEVER_ANSWERED.has(c));
    expect(missing).toEqual([]);
  });

  it('maps a code the catalogue lacks to INTERNAL, and a known one to its own status', () => {
    expect(classify(new StemflowError('SOMETHING_NEW', 'x', { status: 418 }), 1)).toMatchObject({ code: 'INTERNAL' });
    expect(classify(new StemflowError('URL_REFUSED', 'x', { status: 499 }), 1)).toMatchObject({ code: 'URL_REFUSED' });
    expect(problemBody('URL_REFUSED', 'x', '/api/jobs')).toEqual({ type: '/api/problems/URL_REFUSED', title: PROBLEMS.URL_REFUSED.title, status: 400, detail: 'x', instance: '/api/jobs', code: 'URL_REFUSED' });
  });

  it("classifies body-parser's and multer's errors", () => {
    expect(classify(Object.assign(new Error('too large'), { type: 'entity.too.large', status: 413 }), 1).code).toBe('BODY_TOO_LARGE');
    expect(classify(Object.assign(new Error('Unexpected token'), { type: 'entity.parse.failed', status: 400 }), 1).code).toBe('INVALID_BODY');
    expect(classify(new Error('boom'), 1).code).toBe('INTERNAL');
  });
});
