/**
 * The ledger every gateway shares, on FerretDB (MongoDB wire protocol) with six connections as six
 * gateways, and the embedded one: one winner per free key however many race for it, numbered
 * tickets never handed out twice, releases and expiry. (A compare-and-set written as a conditional
 * update gave 2-6 winners out of 6 on FerretDB v1: that is why the ledger only inserts.)
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquire, EmbeddedLedger, MongoLedger, release, type Ledger } from '@stemflow/jobs';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mongoUrl } from '../../support/status.js';

const far = () => new Date(Date.now() + 3600_000);

function ledgerContract(name: string, open: () => Promise<Ledger[]>) {
  describe(`ledger: ${name}`, () => {
    let ls: Ledger[];
    beforeAll(async () => void (ls = await open()));
    const at = (i: number) => ls[i % ls.length]!;
    afterAll(async () => void (await Promise.all(ls.map((l) => l.close()))));

    it('a free key goes to exactly one of many racing for it, every round', async () => {
      for (let round = 0; round < 10; round++) {
        const key = `race:${uuidv7()}`;
        const r = await Promise.all(Array.from({ length: 12 }, (_, i) => acquire(ls[i % ls.length]!, { key, token: `t${i}`, value: {}, expiresAt: far() })));
        expect(r.filter((x) => x.acquired)).toHaveLength(1);
        const holder = await ls[0]!.current(key);
        expect(r.filter((x) => !x.acquired).every((x) => !x.acquired && x.holder.token === holder!.token)).toBe(true);
      }
    });

    it('a holder that is done is taken over by exactly one; a release frees the key', async () => {
      const key = `over:${uuidv7()}`;
      expect((await acquire(ls[0]!, { key, token: 'first', value: { job: 'done' }, expiresAt: far() })).acquired).toBe(true);
      const done = async (h: { value: Record<string, unknown> }) => h.value.job === 'done';
      const r = await Promise.all(Array.from({ length: 12 }, (_, i) => acquire(ls[i % ls.length]!, { key, token: `t${i}`, value: { job: 'running' }, expiresAt: far() }, done)));
      expect(r.filter((x) => x.acquired)).toHaveLength(1);
      const winner = (await at(1).current(key))!.token;
      await release(at(2), key, 'someone-else'); // not the holder: nothing changes
      expect((await ls[0]!.current(key))!.token).toBe(winner);
      await release(at(2), key, winner);
      expect((await acquire(ls[0]!, { key, token: 'after', value: {}, expiresAt: far() })).acquired).toBe(true);
    });

    it('an expired holder is replaced', async () => {
      const key = `exp:${uuidv7()}`;
      await acquire(ls[0]!, { key, token: 'old', value: {}, expiresAt: new Date(Date.now() - 1) });
      expect((await acquire(at(1), { key, token: 'new', value: {}, expiresAt: far() })).acquired).toBe(true);
      expect((await ls[0]!.current(key))!.token).toBe('new');
    });

    it('hands out each of a limit of tickets once, however many ask at once', async () => {
      const key = `rate:${uuidv7()}`;
      const got = await Promise.all(Array.from({ length: 30 }, (_, i) => ls[i % ls.length]!.ticket(key, 10, far())));
      expect(got.filter((n) => n !== undefined).sort((a, b) => a! - b!)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(await ls[0]!.ticket(key, 10, far())).toBeUndefined();
      expect(await ls[0]!.ticket(`${key}:next`, 10, far())).toBe(1);
    });

    it('sweeps what expired', async () => {
      const key = `sweep:${uuidv7()}`;
      await ls[0]!.ticket(key, 5, new Date(Date.now() - 1));
      await acquire(ls[0]!, { key, token: 'x', value: {}, expiresAt: new Date(Date.now() - 1) });
      expect(await ls[0]!.sweep()).toBeGreaterThanOrEqual(2);
      expect(await ls[0]!.current(key)).toBeUndefined();
    });
  });
}

ledgerContract('FerretDB, six connections', async () => {
  const url = mongoUrl();
  return Promise.all(Array.from({ length: 6 }, () => MongoLedger.connect(url)));
});
ledgerContract('embedded', async () => [EmbeddedLedger.open(join(mkdtempSync(join(tmpdir(), 'ledger-')), 'ledger.json'))]);

describe('embedded ledger across a restart', () => {
  it('keeps its leases (an idempotency key outlives the process)', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'ledger-')), 'ledger.json');
    const a = EmbeddedLedger.open(file);
    await acquire(a, { key: 'idem:k', token: 'job-1', value: { fingerprint: 'f' }, expiresAt: far() });
    const b = EmbeddedLedger.open(file);
    expect(await b.current('idem:k')).toMatchObject({ token: 'job-1', value: { fingerprint: 'f' } });
    expect((await acquire(b, { key: 'idem:k', token: 'job-2', value: {}, expiresAt: far() })).acquired).toBe(false);
  });
});
