import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import ipaddr from 'ipaddr.js';
import { SPECIAL_PURPOSE_V4, SPECIAL_PURPOSE_V6, addressPolicy, checkTarget, checkUrl, refusal, request, webhookSecret } from './index.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});
/** A loopback server; `hits` counts the requests it received. */
async function serve(handler: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void, host = '127.0.0.1') {
  const hits: string[] = [];
  const s = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, host, () => r()));
  return { url: `http://${host}:${(s.address() as AddressInfo).port}`, hits };
}
const body = async (r: Awaited<ReturnType<typeof request>>) => {
  const chunks: Buffer[] = [];
  for await (const c of r.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
};

describe('the outbound address guard', () => {
  const none = addressPolicy();
  it.each([
    ['127.0.0.1', /loopback/],
    ['::1', /loopback/],
    ['10.1.2.3', /private/],
    ['172.16.0.1', /private/],
    ['192.168.1.1', /private/],
    ['169.254.169.254', /link-local/],
    ['fe80::1', /link-local/],
    ['fd00:ec2::254', /unique local/],
    ['100.100.100.200', /carrier-grade/],
    ['0.0.0.0', /unspecified/],
    ['::ffff:10.0.0.1', /private/],
    ['::ffff:127.0.0.1', /loopback/],
    ['224.0.0.1', /multicast/],
    ['64:ff9b::a00:1', /NAT64/],
    ['2002:a00:1::1', /6to4/],
  ])('refuses %s', (addr, why) => expect(refusal(addr, none)).toMatch(why));

  it('refuses one address of every block of the IANA special-purpose registries, and the deprecated forms', () => {
    // The first and the last address of each block, as the registries list them.
    for (const { cidr, name } of [...SPECIAL_PURPOSE_V4, ...SPECIAL_PURPOSE_V6]) {
      const [first, last] = ipaddr.parseCIDR(cidr)[0].kind() === 'ipv4' ? bounds4(cidr) : bounds6(cidr);
      expect(refusal(first, none), `${cidr} first`).toBe(`${first} is ${name}`);
      expect(refusal(last, none), `${cidr} last`).toMatch(new RegExp(`^${last.replace(/[.]/g, '\\.')} is `)); // refused (by this block, or a narrower one inside it)
    }
    // Addresses just outside some blocks are public.
    for (const a of ['9.255.255.255', '11.0.0.0', '100.63.255.255', '100.128.0.0', '172.32.0.0', '198.17.255.255', '198.20.0.0', '223.255.255.255', '2001:200::1', '2003::1', 'fbff::1']) {
      expect(refusal(a, none), a).toBeUndefined();
    }
  });

  it.each([
    ['decimal', 'http://2130706433/'],
    ['hex', 'http://0x7f000001/'],
    ['dotted hex', 'http://0x7f.0.0.1/'],
    ['octal', 'http://0177.0.0.1/'],
    ['short', 'http://127.1/'],
    ['bracketed IPv6 loopback', 'http://[::1]/'],
    ['IPv4-mapped', 'http://[::ffff:127.0.0.1]/'],
    ['IPv4-mapped, hex', 'http://[::ffff:7f00:1]/'],
    ['IPv4-compatible', 'http://[::127.0.0.1]/'],
    ['IPv4-compatible, public inside', 'http://[::8.8.8.8]/'],
    ['site-local', 'http://[fec0::1]/'],
    ['NAT64 of metadata', 'http://[64:ff9b::a9fe:a9fe]/'],
    ['the metadata address in decimal', 'http://2852039166/'],
    ['zero', 'http://0/'],
  ])('refuses a %s literal before connecting (%s)', (_form, url) => {
    expect(() => checkUrl(url, none)).toThrow(expect.objectContaining({ code: 'URL_REFUSED' }));
  });

  it.each(['8.8.8.8', '1.1.1.1', '2001:4860:4860::8888', '::ffff:8.8.8.8'])('lets %s through', (addr) => expect(refusal(addr, none)).toBeUndefined());

  it('allows exactly the networks a setting names', () => {
    const p = addressPolicy(['127.0.0.1/32', '10.0.0.0/8']);
    expect(refusal('127.0.0.1', p)).toBeUndefined();
    expect(refusal('10.200.0.1', p)).toBeUndefined();
    expect(refusal('127.0.0.2', p)).toMatch(/loopback/);
    expect(refusal('::1', p)).toMatch(/loopback/);
    expect(refusal('169.254.169.254', p)).toMatch(/link-local/);
  });
});

describe('guarded requests', () => {
  const loop = addressPolicy(['127.0.0.1/32']);

  it('refuses a loopback target before connecting, by literal and by name', async () => {
    const s = await serve((_q, r) => r.end('secret'));
    await expect(request(s.url, { timeoutMs: 2000, policy: addressPolicy() })).rejects.toMatchObject({ code: 'URL_REFUSED', status: 400 });
    await expect(request(s.url.replace('127.0.0.1', 'localhost'), { timeoutMs: 2000, policy: addressPolicy() })).rejects.toMatchObject({ code: 'URL_REFUSED' });
    await expect(checkTarget(s.url.replace('127.0.0.1', 'localhost'), addressPolicy())).rejects.toMatchObject({ code: 'URL_REFUSED' });
    expect(s.hits).toEqual([]);
  });

  it('reaches an allowed address; follows redirects only as far as asked, checking each hop', async () => {
    const inside = await serve((_q, r) => r.end('internal'), '127.0.0.2');
    const target = await serve((_q, r) => r.end('ok'));
    const hop = await serve((q, r) => {
      r.writeHead(302, { location: q.url === '/inside' ? `${inside.url}/x` : `${target.url}/y` }).end();
    });
    const r = await request(`${hop.url}/public`, { timeoutMs: 2000, policy: loop, maxRedirects: 2 });
    expect([r.status, await body(r), r.url]).toEqual([200, 'ok', `${target.url}/y`]);
    // A redirect to a loopback address the setting does not allow is refused, and never reached.
    await expect(request(`${hop.url}/inside`, { timeoutMs: 2000, policy: loop, maxRedirects: 2 })).rejects.toMatchObject({ code: 'URL_REFUSED' });
    await expect(request(`${hop.url}/public`, { timeoutMs: 2000, policy: loop, maxRedirects: 0 })).resolves.toMatchObject({ status: 302 });
    expect(inside.hits).toEqual([]);
  });

  it('refuses a redirect to the metadata address and to other schemes', async () => {
    const hop = await serve((q, r) => r.writeHead(301, { location: q.url === '/meta' ? 'http://169.254.169.254/latest/meta-data/' : 'file:///etc/passwd' }).end());
    await expect(request(`${hop.url}/meta`, { timeoutMs: 2000, policy: loop, maxRedirects: 3 })).rejects.toMatchObject({ code: 'URL_REFUSED', message: expect.stringMatching(/link-local/) });
    await expect(request(`${hop.url}/file`, { timeoutMs: 2000, policy: loop, maxRedirects: 3 })).rejects.toMatchObject({ code: 'INVALID_URL' });
  });

  it('cuts a body that is still arriving at the deadline', async () => {
    const s = await serve((_q, r) => {
      r.writeHead(200, { 'content-type': 'audio/wav' });
      r.write('RIFF');
      const t = setInterval(() => r.write('x'), 100);
      r.on('close', () => clearInterval(t));
    });
    const started = Date.now();
    const r = await request(s.url, { timeoutMs: 600, policy: loop });
    await expect(body(r)).rejects.toMatchObject({ code: 'UPSTREAM_TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('says when nothing listens', async () => {
    const s = await serve((_q, r) => r.end());
    const url = s.url;
    await new Promise<void>((r) => servers.pop()!.close(() => r()));
    await expect(request(url, { timeoutMs: 2000, policy: loop })).rejects.toMatchObject({ code: 'UPSTREAM_UNREACHABLE' });
  });
});

describe('webhook secrets', () => {
  it('differ per owner, are stable, and are Standard Webhooks secrets', () => {
    const m = 'm'.repeat(40);
    expect(webhookSecret(m, 'key-a')).toBe(webhookSecret(m, 'key-a'));
    expect(webhookSecret(m, 'key-a')).not.toBe(webhookSecret(m, 'key-b'));
    expect(webhookSecret(m, null)).not.toBe(webhookSecret('n'.repeat(40), null));
    expect(webhookSecret(m, null)).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
  });
});

const bounds4 = (cidr: string): [string, string] => {
  const [net, bits] = ipaddr.parseCIDR(cidr);
  const n = (net as ipaddr.IPv4).toByteArray().reduce((a, b) => a * 256 + b, 0);
  const size = 2 ** (32 - bits);
  const str = (x: number) => [24, 16, 8, 0].map((s) => Math.floor(x / 2 ** s) % 256).join('.');
  return [str(n), str(n + size - 1)];
};
const bounds6 = (cidr: string): [string, string] => {
  const [net, bits] = ipaddr.parseCIDR(cidr);
  const bytes = (net as ipaddr.IPv6).toByteArray();
  const last = bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    return b | (0xff >> keep);
  });
  return [ipaddr.fromByteArray(bytes).toString(), ipaddr.fromByteArray(last).toString()];
};

describe('a name that resolves public when checked and private when connected (DNS rebinding)', () => {
  it('is refused at the connection: nothing reaches the private address', async () => {
    const inside = await serve((_req, res) => void res.end('secret'));
    const port = new URL(inside.url).port;
    let asked = 0;
    // The first answer is public (the submit's check), every later one loopback (the connection).
    const rebinding = addressPolicy([], (_host, _family, cb) => cb(null, [{ address: asked++ === 0 ? '93.184.215.14' : '127.0.0.1', family: 4 }]));
    await expect(checkTarget(`http://songs.example/x.wav`, rebinding)).resolves.toBeInstanceOf(URL);
    await expect(request(`http://songs.example:${port}/x.wav`, { timeoutMs: 3000, policy: rebinding })).rejects.toMatchObject({ code: 'URL_REFUSED' });
    expect(inside.hits).toEqual([]);
    expect(asked).toBe(2);
  });
});
