/**
 * The AsyncAPI 3.0 document of stemflow's events, generated from the same zod schemas every
 * publisher and consumer validates with, and the topology. It is what another team reads to
 * consume `job.completed` (or any other event) from the `stemflow.events` exchange.
 */
import { z } from 'zod';
import { EVENTS, EVENT_NAMES, type EventName } from './events.js';
import { sampleEvent } from './samples.js';
import { EXCHANGE, HEADERS, QUEUES, cancelsQueue, eventsFor, gatewayEventsQueue } from './topology.js';

const schema = (s: z.ZodType) => {
  const { $schema: _drop, ...rest } = z.toJSONSchema(s, { target: 'draft-7', unrepresentable: 'any', io: 'input' }) as Record<string, unknown>;
  return rest;
};
/** Channel ids may not contain dots: job.completed → jobCompleted. */
const channelId = (name: EventName) => name.replace(/\.(\w)/g, (_m, c: string) => c.toUpperCase());
const pascal = (name: EventName) => name.split('.').map((w) => w[0]!.toUpperCase() + w.slice(1)).join('');

const ABOUT: Record<EventName, { summary: string; publisher: string; description: string }> = {
  'job.created': {
    publisher: 'gateway',
    summary: 'A job was recorded: its upload stored, or the URL its input is imported from.',
    description:
      'Published by the gateway once the job is in the read model and its upload in the object store (`input`), or, for an input given by URL, ' +
      'with `import` instead: the decoder fetches it as the job\'s first stage (`importing`), reports bytes in job.progress, then publishes job.imported.',
  },
  'job.imported': {
    publisher: 'decoder',
    summary: 'An input given by URL is stored whole; decoding starts.',
    description: 'Published by the decoder once the file at the job\'s URL is fetched, checked (size, type by content) and stored: `input` is what an upload\'s job.created would carry.',
  },
  'job.decoded': {
    publisher: 'decoder',
    summary: 'The input was decoded to 44.1 kHz stereo float PCM.',
    description: 'Published by the decoder; `pcmKey` names the raw little-endian float32 interleaved PCM in the object store.',
  },
  'job.progress': {
    publisher: 'decoder, separator',
    summary: 'How far along a job is (0..1) and its estimated time left.',
    description: 'Sent about once a second while decoding and once per model chunk while separating. Progress never goes backwards in the read model, but events can arrive out of order: use `occurredAt`.',
  },
  'job.completed': {
    publisher: 'separator (or decoder, for a deduplicated upload)',
    summary: 'The stems are written; the job is done.',
    description:
      'Terminal. `stems` lists each stem with its object key, format and size; download them through the gateway ' +
      '(`GET /api/jobs/{jobId}/stems/{stem}`) or straight from the object store. Sent once per job; a consumer must still be idempotent on `id` (at-least-once delivery).',
  },
  'job.failed': {
    publisher: 'any service',
    summary: 'The job ended without stems; `reason` says why in a sentence.',
    description: 'Terminal. `code` is stable for programs (NOT_AUDIO, TOO_LONG, COST_LIMIT, GAVE_UP, …), `reason` is for people.',
  },
  'job.canceled': {
    publisher: 'gateway',
    summary: 'A client canceled the job.',
    description: 'Terminal. The separator stops between chunks and removes its work files.',
  },
  'job.webhook': {
    publisher: 'webhooks',
    summary: "How the delivery of the job's end to its webhook went: delivered (a 2xx) or failed (given up, parked).",
    description:
      'Published by the webhook service after a receiver answered 2xx (`delivered`) or after the last attempt failed (`failed`, the message parked in `webhooks.job-events.dlq`). ' +
      'The read model records it as the job\'s `webhook` state; it comes after the terminal event, and does not change the job\'s status.',
  },
};

export function asyncApiDocument(version = '0.1.0') {
  const amqpExchange = { name: EXCHANGE, type: 'topic', durable: true, autoDelete: false, vhost: '/' };
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  for (const name of EVENT_NAMES) {
    const msg = pascal(name);
    messages[msg] = {
      name,
      title: name,
      summary: ABOUT[name].summary,
      description: ABOUT[name].description,
      contentType: 'application/json',
      correlationId: { description: 'Every event of one job carries its id.', location: '$message.payload#/jobId' },
      headers: { $ref: '#/components/schemas/Headers' },
      payload: schema(EVENTS[name]),
      // The shape of a real event of a 10 s song (ids and hashes shortened to placeholders);
      // the schema test checks each against its payload schema.
      examples: [{ name: `${name} of a 10 s song`, headers: { [HEADERS.eventVersion]: 1, traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }, payload: sampleEvent(name) }],
      bindings: { amqp: { messageType: name, bindingVersion: '0.3.0' } },
    };
    channels[channelId(name)] = {
      address: name,
      title: `${name} on ${EXCHANGE}`,
      description: `Routing key \`${name}\` on the topic exchange \`${EXCHANGE}\`. Bind your own durable queue to it (or to \`job.#\` for every event).`,
      messages: { [msg]: { $ref: `#/components/messages/${msg}` } },
      bindings: { amqp: { is: 'routingKey', exchange: amqpExchange, bindingVersion: '0.3.0' } },
    };
    operations[`publish${msg}`] = {
      action: 'send',
      title: `${ABOUT[name].publisher} publishes ${name}`,
      channel: { $ref: `#/channels/${channelId(name)}` },
      messages: [{ $ref: `#/channels/${channelId(name)}/messages/${msg}` }],
      bindings: { amqp: { deliveryMode: 2, mandatory: true, bindingVersion: '0.3.0' } },
    };
  }
  // stemflow's own consumers, so an operator sees which queue takes what.
  for (const q of Object.values(QUEUES)) {
    for (const name of eventsFor(q, EVENT_NAMES)) {
      operations[`${q.name.replace(/[^a-zA-Z0-9]+/g, '_')}_${pascal(name)}`] = {
        action: 'receive',
        title: `queue ${q.name} receives ${name}`,
        description: `${q.description} Prefetch ${q.prefetch}; up to ${q.retry.maxAttempts} attempts, then the message is parked in \`${q.name}.dlq\`.`,
        channel: { $ref: `#/channels/${channelId(name)}` },
        messages: [{ $ref: `#/channels/${channelId(name)}/messages/${pascal(name)}` }],
        bindings: { amqp: { ack: true, bindingVersion: '0.3.0' } },
      };
    }
  }
  // Per-process queues (exclusive, auto-delete, named with the instance's id): every instance gets
  // every event it is bound to, once; nothing is retried or parked.
  for (const q of [gatewayEventsQueue('<instance>'), cancelsQueue('<instance>')]) {
    for (const name of eventsFor(q, EVENT_NAMES)) {
      operations[`${q.name.split('.')[0]!.replace(/[^a-zA-Z0-9]+/g, '_')}_instance_${pascal(name)}`] = {
        action: 'receive',
        title: `queue ${q.name} (one per process) receives ${name}`,
        description: `${q.description} Exclusive and auto-delete: one per running process, gone with its connection; nothing is retried or parked.`,
        channel: { $ref: `#/channels/${channelId(name)}` },
        messages: [{ $ref: `#/channels/${channelId(name)}/messages/${pascal(name)}` }],
        bindings: { amqp: { ack: true, bindingVersion: '0.3.0' } },
      };
    }
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'stemflow events',
      version,
      description:
        'Every job event stemflow publishes, on one durable topic exchange, routing key = event type. ' +
        'Bodies are JSON envelopes `{id, type, version, jobId, occurredAt, payload}`; the AMQP `message_id` is the event id, ' +
        'messages are persistent, and the W3C trace context travels in the `traceparent`/`tracestate` headers so a consumer ' +
        'can join the job\'s trace. Delivery is at least once: deduplicate on `id`. ' +
        'Payload and header schemas are JSON Schema draft-07. Versions: a change that would break a consumer gets a new `version` ' +
        '(header `x-event-version`, field `version`), published beside the previous one for at least 6 months; fields are only ever ' +
        'added within a version, as optional in the schema (consumers must ignore unknown fields).',
    },
    defaultContentType: 'application/json',
    servers: {
      rabbitmq: { host: 'localhost:5672', protocol: 'amqp', protocolVersion: '0.9.1', description: 'The broker named by AMQP_URL.' },
    },
    channels,
    operations,
    components: {
      messages,
      schemas: {
        Headers: {
          type: 'object',
          required: [HEADERS.eventVersion, 'traceparent'],
          properties: {
            [HEADERS.eventVersion]: { type: 'integer', description: 'The envelope version of the event type (1).' },
            traceparent: { type: 'string', pattern: '^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$', description: "W3C trace context of the publishing span: always present (a fresh trace when the publisher had none), whether or not spans are exported." },
            tracestate: { type: 'string' },
          },
        },
      },
    },
  };
}
