/**
 * What the API answers for a path it lacks (404 NOT_FOUND) and for a method a path lacks (405
 * METHOD_NOT_ALLOWED with Allow), from the operations the OpenAPI document declares.
 */
import type { Request } from 'express';
import { openApiDocument } from '@stemflow/contracts';
import { problem } from './problems.js';

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
/** Each documented path as a pattern, with its methods (GET brings HEAD). */
const ROUTES: { re: RegExp; allow: string[] }[] = [
  ...Object.entries(openApiDocument().paths as Record<string, Record<string, unknown>>).map(([path, ops]) => {
    const methods = Object.keys(ops).filter((m) => METHODS.includes(m)).map((m) => m.toUpperCase());
    if (methods.includes('GET')) methods.push('HEAD');
    const re = new RegExp(`^${path.replace(/[.]/g, '\\.').replace(/\{[^}]+\}/g, '[^/]+')}/?$`);
    return { re, allow: methods };
  }),
  { re: /^\/api\/(openapi|asyncapi)\.json$/, allow: ['GET', 'HEAD'] },
];

export function unmatched(req: Request): never {
  const path = req.originalUrl.split('?')[0]!;
  const route = ROUTES.find((r) => r.re.test(path));
  if (route && !route.allow.includes(req.method)) {
    req.res?.set('allow', route.allow.join(', '));
    throw problem('METHOD_NOT_ALLOWED', `${path.slice(0, 200)} takes ${route.allow.join(', ')}, not ${req.method}`);
  }
  throw problem('NOT_FOUND', `no endpoint ${req.method} ${path.slice(0, 200)}`);
}
