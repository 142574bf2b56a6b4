import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { asyncApiDocument } from './asyncapi.js';
import { EVENT_NAMES } from './events.js';
import { sampleEvent } from './samples.js';

const require = createRequire(import.meta.url);
const committed = fileURLToPath(new URL('../../../docs/asyncapi.yaml', import.meta.url));

describe('AsyncAPI document', () => {
  const doc = asyncApiDocument();

  it('is valid AsyncAPI 3.0 by the official JSON schema (@asyncapi/specs)', () => {
    const spec = require('@asyncapi/specs/schemas/3.0.0-without-$id.json') as object;
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
    addFormats.default(ajv);
    const validate = ajv.compile(spec);
    const ok = validate(JSON.parse(JSON.stringify(doc)));
    expect(validate.errors?.slice(0, 5) ?? [], 'schema errors').toEqual([]);
    expect(ok).toBe(true);
  });

  it('describes every event, and each payload schema accepts a real event of that type', () => {
    const ajv = new Ajv({ strict: false });
    addFormats.default(ajv);
    const messages = doc.components.messages as Record<string, { name: string; payload: object }>;
    expect(Object.values(messages).map((m) => m.name).sort()).toEqual([...EVENT_NAMES].sort());
    for (const m of Object.values(messages)) {
      const check = ajv.compile(m.payload);
      const sample = sampleEvent(m.name as (typeof EVENT_NAMES)[number]);
      expect(check(sample), `${m.name}: ${JSON.stringify(check.errors)}`).toBe(true);
      expect(check({ ...sample, jobId: 'nope' }), `${m.name} must refuse a bad jobId`).toBe(false);
    }
  });

  it("every message has an example whose payload and headers its schemas accept; traceparent is a required header", () => {
    const ajv = new Ajv({ strict: false });
    addFormats.default(ajv);
    const headers = ajv.compile((doc.components.schemas as Record<string, object>).Headers!);
    const messages = doc.components.messages as Record<string, { name: string; payload: object; examples: { headers: object; payload: object }[] }>;
    for (const m of Object.values(messages)) {
      expect(m.examples.length, m.name).toBeGreaterThan(0);
      const check = ajv.compile(m.payload);
      for (const ex of m.examples) {
        expect(check(ex.payload), `${m.name}: ${JSON.stringify(check.errors)}`).toBe(true);
        expect(headers(ex.headers), `${m.name} headers`).toBe(true);
      }
    }
    expect(headers({ 'x-event-version': 1 })).toBe(false); // no traceparent: refused
  });

  it('docs/asyncapi.yaml is the generated document (run `pnpm docs:generate` after changing a contract)', () => {
    expect(parse(readFileSync(committed, 'utf8'))).toEqual(JSON.parse(JSON.stringify(doc)));
  });
});
