import { describe, expect, it } from 'vitest';
import { EVENT_NAMES } from './events.js';
import { QUEUES, eventsFor, topicMatches } from './topology.js';

describe('topology', () => {
  it.each([
    ['job.#', 'job.created', true],
    ['job.*', 'job.created', true],
    ['job.created', 'job.created', true],
    ['job.created', 'job.decoded', false],
    ['#', 'a.b.c', true],
    ['job.*', 'job.a.b', false],
    ['job.#', 'job', true],
  ])('%s matches %s: %s', (p, k, want) => expect(topicMatches(p, k)).toBe(want));

  it('routes each event to the queues that consume it', () => {
    expect(eventsFor(QUEUES.decoder, EVENT_NAMES)).toEqual(['job.created']);
    expect(eventsFor(QUEUES.separator, EVENT_NAMES)).toEqual(['job.decoded']);
    expect(eventsFor(QUEUES.status, EVENT_NAMES)).toEqual(EVENT_NAMES);
  });

  it('the separator takes one job at a time', () => expect(QUEUES.separator.prefetch).toBe(1));
});
