/**
 * Outbound HTTP to addresses a client chose (webhook receivers, files imported by URL), with the
 * guard every such request needs: only public unicast addresses are reached unless a setting allows
 * more. The address is checked where the connection is made (the resolver's answer, every redirect
 * hop, IP literals), so DNS rebinding and redirects to internal hosts find the same wall.
 */
import { createHmac } from 'node:crypto';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { StemflowError } from '@stemflow/contracts';
import { specialPurpose } from './special-purpose.js';

export { SPECIAL_PURPOSE_V4, SPECIAL_PURPOSE_V6 } from './special-purpose.js';

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** A name's addresses, as dns.lookup with `all: true` answers them (tests inject one). */
export type Resolver = (host: string, family: number, cb: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;
const systemResolver: Resolver = (host, family, cb) => dnsLookup(host, { all: true, family }, cb);

/** Which addresses outbound requests may reach besides the public internet, and how names resolve. */
export type AddressPolicy = { allow: readonly Cidr[]; describe: string; resolve: Resolver };

/** `127.0.0.0/8,::1/128` → a policy; throws on a malformed entry (config checks it at start). */
export function addressPolicy(allowCidrs: readonly string[] = [], resolve: Resolver = systemResolver): AddressPolicy {
  const allow = allowCidrs.map((c) => {
    const s = c.includes('/') ? c : `${c}/${isIP(c) === 6 ? 128 : 32}`;
    return ipaddr.parseCIDR(s);
  });
  return { allow, describe: allowCidrs.length ? allowCidrs.join(', ') : 'none', resolve };
}

/**
 * Why an address may not be reached, or undefined when it may: public unicast only. An
 * IPv4-mapped IPv6 address is judged as its IPv4; every special-purpose block of IANA's registries
 * (loopback, private, link-local with the cloud metadata services, CGN, documentation, multicast,
 * the deprecated and transition forms: special-purpose.ts) is refused unless the policy allows it.
 */
export function refusal(address: string, policy: AddressPolicy): string | undefined {
  if (!ipaddr.isValid(address)) return `"${address}" is not an IP address`;
  let ip = ipaddr.parse(address);
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address();
  if (policy.allow.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits))) return undefined;
  const special = specialPurpose(ip);
  return special ? `${address} is ${special}` : undefined;
}

export const refusedError = (url: string, why: string) =>
  new StemflowError('URL_REFUSED', `${url} is refused: ${why}; this server reaches only public addresses`, { status: 400 });

/** A resolver that answers only addresses the policy allows (so the socket connects to what was checked). */
export function guardedLookup(policy: AddressPolicy): LookupFunction {
  return ((hostname: string, options: { all?: boolean; family?: number }, cb: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void) => {
    policy.resolve(hostname, options.family ?? 0, (err, list) => {
      if (err) return cb(err, []);
      for (const a of list) {
        const why = refusal(a.address, policy);
        // One refused answer refuses the name: a host that resolves inside is not a public host.
        if (why) return cb(Object.assign(new Error(`${hostname} resolves to ${why}`), { code: 'EREFUSED_ADDRESS' }), []);
      }
      if (options.all) return cb(null, list);
      cb(null, list[0]!.address, list[0]!.family);
    });
  }) as LookupFunction;
}

/** Checks a URL before any connection: scheme, and a literal address (a resolver never sees those). */
export function checkUrl(raw: string, policy: AddressPolicy): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new StemflowError('INVALID_URL', `"${raw.slice(0, 200)}" is not a URL`, { status: 400 });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new StemflowError('INVALID_URL', `${url.protocol}// URLs are not accepted; use http:// or https://`, { status: 400 });
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host)) {
    const why = refusal(host, policy);
    if (why) throw refusedError(url.origin, why);
  }
  return url;
}

/** Redacts credentials and the query (which may hold a token) for logs and records. */
export const redactUrl = (raw: string): string => {
  try {
    const u = new URL(raw);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '(not a URL)';
  }
};

/**
 * The secret that signs one owner's webhooks (Standard Webhooks' `whsec_` + base64 form), derived
 * from the server's WEBHOOK_SECRET: each API key verifies with its own, and none can forge another
 * key's deliveries. Nothing is stored; every gateway and webhook service derives the same.
 */
export const webhookSecret = (master: string, owner: string | null): string =>
  `whsec_${createHmac('sha256', master).update(`stemflow-webhooks:${owner ?? ''}`).digest('base64')}`;

/** checkUrl, and the name resolved now: a target on a refused address is a 400 at submit, not a failed delivery later. */
export async function checkTarget(raw: string, policy: AddressPolicy): Promise<URL> {
  const url = checkUrl(raw, policy);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host)) return url;
  const addresses = await new Promise<LookupAddress[]>((resolve, reject) =>
    policy.resolve(host, 0, (err, a) => (err ? reject(new StemflowError('URL_UNRESOLVED', `${url.origin}: the name ${host} does not resolve (${err.code ?? err.message})`, { status: 422 })) : resolve(a))),
  );
  for (const a of addresses) {
    const why = refusal(a.address, policy);
    if (why) throw refusedError(url.origin, `${host} resolves to ${why}`);
  }
  return url;
}
export { request, type OutboundRequest, type OutboundResponse } from './request.js';
export { openImport, pathName, type ImportOptions, type OpenedImport } from './import.js';
