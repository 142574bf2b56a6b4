/**
 * The blocks a client-chosen URL may not reach: every entry of IANA's IPv4 and IPv6
 * Special-Purpose Address Registries (RFC 6890 and its updates), multicast, and the deprecated
 * and transition forms that carry an IPv4 address inside an IPv6 one (IPv4-compatible ::/96,
 * 6to4, Teredo, NAT64) or that once meant "local" (site-local fec0::/10). Some registry entries
 * are globally reachable anycast services (AS112, PCP, TURN); none is a place a song or a
 * webhook receiver lives, so all are refused unless OUTBOUND_ALLOW_CIDRS opens them.
 */
import ipaddr from 'ipaddr.js';

type Block = { cidr: string; name: string };

export const SPECIAL_PURPOSE_V4: readonly Block[] = [
  { cidr: '0.0.0.0/8', name: 'the unspecified address or "this network" (RFC 791)' },
  { cidr: '10.0.0.0/8', name: 'a private-network address (RFC 1918)' },
  { cidr: '100.64.0.0/10', name: 'a carrier-grade NAT address (RFC 6598)' },
  { cidr: '127.0.0.0/8', name: 'a loopback address' },
  { cidr: '169.254.0.0/16', name: 'a link-local address (where cloud metadata services live)' },
  { cidr: '172.16.0.0/12', name: 'a private-network address (RFC 1918)' },
  { cidr: '192.0.0.0/24', name: 'an IETF protocol assignment (RFC 6890)' },
  { cidr: '192.0.2.0/24', name: 'a documentation address (TEST-NET-1)' },
  { cidr: '192.31.196.0/24', name: 'an AS112 address (RFC 7535)' },
  { cidr: '192.52.193.0/24', name: 'an AMT address (RFC 7450)' },
  { cidr: '192.88.99.0/24', name: 'a deprecated 6to4 relay anycast address (RFC 7526)' },
  { cidr: '192.168.0.0/16', name: 'a private-network address (RFC 1918)' },
  { cidr: '192.175.48.0/24', name: 'an AS112 direct delegation address (RFC 7534)' },
  { cidr: '198.18.0.0/15', name: 'a benchmarking address (RFC 2544)' },
  { cidr: '198.51.100.0/24', name: 'a documentation address (TEST-NET-2)' },
  { cidr: '203.0.113.0/24', name: 'a documentation address (TEST-NET-3)' },
  { cidr: '224.0.0.0/4', name: 'a multicast address' },
  { cidr: '255.255.255.255/32', name: 'the limited broadcast address' }, // inside 240/4: the narrower block first
  { cidr: '240.0.0.0/4', name: 'a reserved address (RFC 1112)' },
];

export const SPECIAL_PURPOSE_V6: readonly Block[] = [
  // ::/96 holds the unspecified (::) and loopback (::1) addresses and the deprecated
  // IPv4-compatible form (::a.b.c.d, RFC 4291): nothing in it is a public host.
  { cidr: '::/96', name: 'an IPv4-compatible, unspecified or loopback address (::/96)' },
  // ::ffff:0:0/96 (IPv4-mapped) is not here: such an address is judged as the IPv4 it carries.
  { cidr: '::ffff:0:0:0/96', name: 'an IPv4-translated address (RFC 6145)' },
  { cidr: '64:ff9b::/96', name: 'a NAT64 address (RFC 6052)' },
  { cidr: '64:ff9b:1::/48', name: 'a local-use NAT64 address (RFC 8215)' },
  { cidr: '100::/64', name: 'a discard-only address (RFC 6666)' },
  { cidr: '100:0:0:1::/64', name: 'a dummy IPv6 prefix (RFC 9780)' },
  { cidr: '2001::/23', name: 'an IETF protocol assignment (Teredo, benchmarking, ORCHID, AMT, AS112…)' },
  { cidr: '2001:db8::/32', name: 'a documentation address' },
  { cidr: '2002::/16', name: 'a 6to4 address (RFC 3056)' },
  { cidr: '2620:4f:8000::/48', name: 'an AS112 address (RFC 7534)' },
  { cidr: '3fff::/20', name: 'a documentation address (RFC 9637)' },
  { cidr: '5f00::/16', name: 'a segment-routing SID (RFC 9602)' },
  { cidr: 'fc00::/7', name: 'a private-network (unique local) address' },
  { cidr: 'fe80::/10', name: 'a link-local address' },
  { cidr: 'fec0::/10', name: 'a site-local address (deprecated, RFC 3879)' },
  { cidr: 'ff00::/8', name: 'a multicast address' },
];

const parsed = (list: readonly Block[]) => list.map((b) => ({ net: ipaddr.parseCIDR(b.cidr), name: b.name }));
const V4 = parsed(SPECIAL_PURPOSE_V4);
const V6 = parsed(SPECIAL_PURPOSE_V6);

/** The special-purpose block an address is in (what it is, for a sentence), or undefined for a public one. */
export function specialPurpose(ip: ipaddr.IPv4 | ipaddr.IPv6): string | undefined {
  const blocks = ip.kind() === 'ipv4' ? V4 : V6;
  return blocks.find(({ net: [net, bits] }) => ip.match(net, bits))?.name;
}
