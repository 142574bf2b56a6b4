/**
 * A service using stemflow through @stemflow/client, the client generated from the OpenAPI
 * document: a whole job (submit, its events, stems, peaks, a mix, delete, then 404) with no cast
 * and no hand-written type, against the pipeline on the tiny model.
 */
import { asForm, followJob, stemflowClient, ProblemError, type JobEvent } from '@stemflow/client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { toneWav } from '../../../support/audio.js';
import { tinyStack, type TinyStack } from '../../../support/tiny-stack.js';

let s: TinyStack;
beforeAll(async () => {
  s = await tinyStack({ apiKeys: ['client-key'] });
});
afterAll(async () => {
  await s?.close();
});

it('drives a whole job: submit, follow, stems, peaks, mix, delete → 404', { timeout: 60_000 }, async () => {
  const api = stemflowClient({ baseUrl: s.url, apiKey: 'client-key' });
  const file = new File([new Uint8Array(await toneWav(2, 220))], 'tone.wav', { type: 'audio/wav' });

  const created = await api.POST('/api/jobs', { body: { file, stems: 'vocals,drums', format: 'flac' }, bodySerializer: asForm, headers: { 'Idempotency-Key': crypto.randomUUID() } });
  expect(created.response.status).toBe(201);
  expect(created.response.headers.get('location')).toBe(`/api/jobs/${created.data!.id}`);
  const id = created.data!.id;

  const seen: JobEvent[] = [];
  const job = await followJob(api, id, { onEvent: (e) => seen.push(e) });
  expect(job.status).toBe('completed');
  expect(seen.at(-1)?.event).toBe('completed');
  expect(job.stems.map((x) => [x.name, x.format])).toEqual([['vocals', 'flac'], ['drums', 'flac']]);
  // Following a finished job again, from its last event: nothing more, the same job.
  expect((await followJob(api, id, { lastEventId: seen.at(-1)!.id })).status).toBe('completed');

  const stem = await api.GET('/api/jobs/{id}/stems/{stem}', { params: { path: { id, stem: 'vocals' } }, parseAs: 'arrayBuffer' });
  expect([stem.response.status, stem.response.headers.get('content-type')]).toEqual([200, 'audio/flac']);
  expect(Buffer.from(stem.data as ArrayBuffer).subarray(0, 4).toString()).toBe('fLaC');

  const peaks = await api.GET('/api/jobs/{id}/stems/{stem}/peaks', { params: { path: { id, stem: 'drums' }, query: { samples_per_pixel: 512 } } });
  expect(peaks.data?.samples_per_pixel).toBe(512);
  expect(peaks.data!.data.length).toBe(2 * peaks.data!.length);

  const mix = await api.GET('/api/jobs/{id}/mix', { params: { path: { id }, query: { stems: 'drums', gains: 'drums:0.5', format: 'wav16' } }, parseAs: 'arrayBuffer' });
  expect(mix.response.status).toBe(200);
  expect(Buffer.from(mix.data as ArrayBuffer).subarray(0, 4).toString()).toBe('RIFF');

  const bad = await api.GET('/api/jobs/{id}/mix', { params: { path: { id }, query: { stems: 'bass' } } });
  expect([bad.response.status, bad.error?.code]).toEqual([400, 'INVALID_MIX']);

  const del = await api.DELETE('/api/jobs/{id}', { params: { path: { id } } });
  expect(del.response.status).toBe(204);
  const gone = await api.GET('/api/jobs/{id}', { params: { path: { id } } });
  expect([gone.response.status, gone.error?.code]).toEqual([404, 'JOB_NOT_FOUND']);
  await expect(followJob(api, id)).rejects.toBeInstanceOf(ProblemError);
});
