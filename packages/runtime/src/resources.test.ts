import { expect, it } from 'vitest';
import { openAll } from './resources.js';

it('openAll: every resource in the order asked, or none — those that opened are released and the first failure thrown', async () => {
  const released: string[] = [];
  const release = (r: string) => {
    released.push(r);
    if (r === 'b') throw new Error('release failed'); // ignored: the open's failure is what matters
  };
  expect(await openAll([Promise.resolve('a'), Promise.resolve('b')], release)).toEqual(['a', 'b']);
  expect(released).toEqual([]);
  const boom = new Error('no such object');
  await expect(openAll([Promise.resolve('a'), Promise.reject(boom), Promise.resolve('b'), Promise.reject(new Error('later'))], release)).rejects.toBe(boom);
  expect(released.sort()).toEqual(['a', 'b']);
});
