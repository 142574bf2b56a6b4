/** The OpenAPI 3.1 document, generated from the same zod schemas the gateway validates with. */
import { z } from 'zod';
import { CreateJobResponse, ErrorBody, Health, JobList, JobView } from './http.js';
import { AUDIO_FORMATS, JOB_STATUSES, STEM_NAMES } from './job.js';

const schema = (s: z.ZodType) => z.toJSONSchema(s, { target: 'draft-2020-12', unrepresentable: 'any', io: 'output' });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (name: string) => ({ 'application/json': { schema: ref(name) } });
const error = (description: string) => ({ description, content: json('Error') });
const idParam = { name: 'id', in: 'path', required: true, description: 'Job id (UUID).', schema: { type: 'string', format: 'uuid' } };

export function openApiDocument(version = '0.1.0') {
  const auth = [{ bearer: [] }, {}];
  return {
    openapi: '3.1.0',
    info: {
      title: 'stemflow',
      version,
      description:
        'Upload a song, follow its progress, download its stems (drums, bass, other, vocals) separated by htdemucs. ' +
        'When the server sets API_KEYS, every call needs `Authorization: Bearer <key>` and a key sees only its own jobs.',
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Job: schema(JobView),
        JobList: schema(JobList),
        CreateJobResponse: schema(CreateJobResponse),
        Error: schema(ErrorBody),
        Health: schema(Health),
      },
    },
    security: auth,
    paths: {
      '/api/jobs': {
        post: {
          summary: 'Upload a song and start a separation job',
          requestBody: {
            required: true,
            content: {
              'multipart/form-data': {
                schema: {
                  type: 'object',
                  required: ['file'],
                  properties: {
                    file: { type: 'string', format: 'binary', description: 'Any audio (or video with audio): wav, flac, mp3, ogg, opus, m4a…' },
                    stems: { type: 'string', description: `Comma-separated subset of ${STEM_NAMES.join(', ')} (default: all).` },
                    two_stems: { type: 'string', enum: ['vocals'], description: 'Vocals and accompaniment only.' },
                    format: { type: 'string', enum: [...AUDIO_FORMATS], default: 'wav16' },
                    shifts: { type: 'integer', minimum: 1, maximum: 10, default: 1, description: 'Random shifts averaged: better quality, proportionally slower.' },
                    overlap: { type: 'number', minimum: 0, maximum: 0.9, default: 0.25 },
                    clip: { type: 'string', enum: ['rescale', 'clamp'], default: 'rescale' },
                  },
                },
              },
            },
          },
          responses: {
            '201': { description: 'Accepted: the job exists and its job.created event is stored by the broker.', content: json('CreateJobResponse') },
            '400': error('Missing file, empty file, wrong field, or invalid options.'),
            '401': error('Missing or unknown API key.'),
            '413': error('Larger than MAX_UPLOAD_BYTES.'),
            '415': error('Not audio or video.'),
            '503': error('The store, database or broker is unavailable; nothing was kept.'),
          },
        },
        get: {
          summary: 'List jobs, newest first',
          parameters: [
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
            { name: 'cursor', in: 'query', schema: { type: 'string' }, description: 'next_cursor of the previous page.' },
            { name: 'status', in: 'query', schema: { type: 'string', enum: [...JOB_STATUSES] } },
          ],
          responses: { '200': { description: 'A page of jobs.', content: json('JobList') }, '400': error('Bad query.'), '401': error('Missing or unknown API key.') },
        },
      },
      '/api/jobs/{id}': {
        parameters: [idParam],
        get: {
          summary: 'A job: status, stage, progress, ETA and stem links',
          responses: { '200': { description: 'The job.', content: json('Job') }, '400': error('Not a job id.'), '404': error('No such job.') },
        },
        delete: {
          summary: 'Cancel the job if it runs, then delete its files and record',
          responses: { '204': { description: 'Deleted.' }, '400': error('Not a job id.'), '404': error('No such job.') },
        },
      },
      '/api/jobs/{id}/cancel': {
        parameters: [idParam],
        post: {
          summary: 'Cancel a pending or running job (honoured between chunks)',
          responses: { '202': { description: 'Cancel requested.', content: json('Job') }, '404': error('No such job.'), '409': error('The job already ended.') },
        },
      },
      '/api/jobs/{id}/events': {
        parameters: [idParam],
        get: {
          summary: 'Server-Sent Events: `progress` while it runs, then `completed`, `failed` or `canceled`, then the stream closes',
          responses: { '200': { description: 'text/event-stream; each data line is a Job.', content: { 'text/event-stream': { schema: { type: 'string' } } } }, '404': error('No such job.') },
        },
      },
      '/api/jobs/{id}/stems/{stem}': {
        parameters: [idParam, { name: 'stem', in: 'path', required: true, schema: { type: 'string', enum: [...STEM_NAMES, 'accompaniment'] } }],
        get: {
          summary: 'Download one stem (Range supported), or a redirect to a presigned object-store URL',
          responses: {
            '200': { description: 'The audio.', content: { 'audio/*': { schema: { type: 'string', format: 'binary' } } } },
            '206': { description: 'A byte range of it.' },
            '302': { description: 'Redirect to a presigned URL (S3 store).' },
            '404': error('No such job or stem, or the job is not completed.'),
            '416': error('Range not satisfiable.'),
          },
        },
      },
      '/api/jobs/{id}/stems.zip': {
        parameters: [idParam],
        get: { summary: 'All stems in one zip (streamed)', responses: { '200': { description: 'application/zip' }, '404': error('No such job, or not completed.') } },
      },
      '/api/health': {
        get: {
          summary: 'Each dependency (broker, store, database)',
          security: [],
          responses: { '200': { description: 'All up.', content: json('Health') }, '503': { description: 'Something is down.', content: json('Health') } },
        },
      },
    },
  };
}
