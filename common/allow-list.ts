// Where call callbacks may go: the operator's allow-list (--callback-allow / ZFAAS_CALLBACK_ALLOW) and the
// checks made with it. A callback URL is a caller's way to make the platform send a request, so without a
// list a caller could make it reach into networks it should not (SSRF): the cloud's metadata service, a
// database on the API's host. Two checks: at invocation the URL's form and its host (a 400 naming the field
// when refused), and again at each delivery against the addresses its name resolves to then, returning the
// one address the deliverer must connect to, so that a name that resolves elsewhere later (DNS rebinding)
// cannot slip past. Addresses and ranges are matched with ipaddr.js.
import { lookup as dnsLookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';
import { UsageError } from './errors.js';

type Ip = ipaddr.IPv4 | ipaddr.IPv6;

// The list when the operator sets none: this machine only.
export const DEFAULT_CALLBACK_ALLOW = 'loopback';
const LOOPBACK = ['127.0.0.0/8', '::1', 'localhost'];
export const CALLBACK_URL_MAX = 2048;
const DNS_TIMEOUT_MS = 5000;

// A URL refused; the message says why, without the field's name (the caller adds it).
export class CallbackUrlError extends Error {}

type Entry =
  | { kind: 'range'; range: [Ip, number]; port?: number; text: string }
  | { kind: 'name'; name: string; port?: number; text: string }
  | { kind: 'suffix'; suffix: string; port?: number; text: string }; // "*.example.com": ".example.com"

export type AllowEntry =
  | { kind: 'range'; cidr: string; family: 4 | 6; port?: number; text: string }
  | { kind: 'name'; name: string; port?: number; text: string }
  | { kind: 'suffix'; suffix: string; port?: number; text: string };

export interface Resolved {
  address: string;
  family: 4 | 6;
}
export type Lookup = (host: string) => Promise<Resolved[]>;

// One label of a host name (underscores too: compose service names have them).
const LABEL = '[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?';
const NAME_RE = new RegExp(`^${LABEL}(\\.${LABEL})*$`);

// An address as matched: an IPv4-mapped IPv6 address (::ffff:10.0.0.1) is the IPv4 address it carries.
function normal(ip: Ip): Ip {
  return ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress() ? (ip as ipaddr.IPv6).toIPv4Address() : ip;
}

// A literal address, strictly: four decimal parts for IPv4 (no "10.1", no hex), any valid IPv6 form.
function literal(s: string): Ip | undefined {
  if (ipaddr.IPv4.isValidFourPartDecimal(s)) return ipaddr.IPv4.parse(s);
  if (s.includes(':') && ipaddr.IPv6.isValid(s)) return ipaddr.IPv6.parse(s);
  return undefined;
}

const ENTRY_FORMS =
  'expected a CIDR range (10.0.0.0/8, fd00::/8), an address (10.1.2.3, ::1), a host name (hooks.example.com), ' +
  "a wildcard (*.example.com), each optionally with :PORT (IPv6 in brackets: [fd00::/8]:443), or 'loopback', or 'none'";

function parsePort(s: string, entry: string, what: string): number {
  if (!/^\d{1,5}$/.test(s) || Number(s) < 1 || Number(s) > 65535)
    throw new UsageError(`bad ${what} entry "${entry}": the port must be 1 to 65535`);
  return Number(s);
}

function parseEntry(text: string, what: string): Entry {
  let body = text;
  let port: number | undefined;
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (bracket) {
    body = bracket[1]!;
    if (bracket[2] !== undefined) port = parsePort(bracket[2], text, what);
    if (!body.includes(':')) throw new UsageError(`bad ${what} entry "${text}": brackets are for IPv6 addresses`);
  } else if (text.split(':').length === 2) {
    // One colon: NAME:PORT or IPv4[/LEN]:PORT (more colons: a bare IPv6 address, which takes no port)
    const i = text.lastIndexOf(':');
    body = text.slice(0, i);
    port = parsePort(text.slice(i + 1), text, what);
  }
  const slash = body.indexOf('/');
  if (slash >= 0) {
    const addr = literal(body.slice(0, slash));
    const lenText = body.slice(slash + 1);
    const max = addr?.kind() === 'ipv6' ? 128 : 32;
    if (!addr || !/^\d{1,3}$/.test(lenText) || Number(lenText) > max)
      throw new UsageError(`bad ${what} entry "${text}": a CIDR range is ADDRESS/BITS (0 to ${max}), e.g. 10.0.0.0/8`);
    const bits = Number(lenText);
    // ::ffff:10.0.0.0/104 is 10.0.0.0/8: mapped addresses are matched as the IPv4 addresses they carry
    const mapped = addr.kind() === 'ipv6' && bits >= 96 && normal(addr).kind() === 'ipv4';
    return { kind: 'range', range: mapped ? [normal(addr), bits - 96] : [addr, bits], port, text };
  }
  const addr = literal(body);
  if (addr) {
    const ip = normal(addr);
    return { kind: 'range', range: [ip, ip.kind() === 'ipv4' ? 32 : 128], port, text };
  }
  const name = body.toLowerCase().replace(/\.$/, '');
  if (name.startsWith('*.')) {
    const rest = name.slice(2);
    if (!NAME_RE.test(rest) || !rest.includes('.'))
      throw new UsageError(`bad ${what} entry "${text}": a wildcard is *.DOMAIN with at least two labels, e.g. *.example.com`);
    return { kind: 'suffix', suffix: `.${rest}`, port, text };
  }
  if (!NAME_RE.test(name) || /^[\d.]+$/.test(name)) throw new UsageError(`bad ${what} entry "${text}": ${ENTRY_FORMS}`);
  return { kind: 'name', name, port, text };
}

const defaultLookup: Lookup = async (host) => {
  const list = await dnsLookup(host, { all: true, verbatim: true });
  return list.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_res, rej) => {
    timer = setTimeout(() => rej(new Error(`${what} took longer than ${ms / 1000} s`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

const shown = (s: string): string => JSON.stringify(s.length > 100 ? `${s.slice(0, 100)}...` : s);

export class AllowList {
  private constructor(
    private readonly entries: Entry[],
    private readonly lookup: Lookup,
    private readonly dnsTimeoutMs: number,
  ) {}

  // The operator's list: comma-separated entries; unset or empty: `empty` (loopback only); 'none': nothing.
  // Throws a UsageError naming the bad entry and the forms expected; `what` names the list in it.
  static parse(raw: string | undefined, o: { lookup?: Lookup; dnsTimeoutMs?: number; what?: string; empty?: string } = {}): AllowList {
    const what = o.what ?? 'callback allow-list';
    const items = (raw?.trim() ? raw : (o.empty ?? DEFAULT_CALLBACK_ALLOW))
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const entries: Entry[] = [];
    if (!(items.length === 1 && items[0]!.toLowerCase() === 'none')) {
      for (const item of items) {
        if (item.toLowerCase() === 'none') throw new UsageError(`bad ${what}: 'none' cannot be combined with other entries`);
        if (item === '*') throw new UsageError(`bad ${what} entry "*": to allow every address write 0.0.0.0/0,::/0`);
        for (const text of item.toLowerCase() === 'loopback' ? LOOPBACK : [item]) entries.push(parseEntry(text, what));
      }
    }
    return new AllowList(entries, o.lookup ?? defaultLookup, o.dnsTimeoutMs ?? DNS_TIMEOUT_MS);
  }

  // Callbacks are refused altogether ('none').
  get disabled(): boolean {
    return this.entries.length === 0;
  }

  // The entries, each as a CIDR range, a host name or a *.domain suffix, with its port if it named one
  // (for rules outside the API: the function network's firewall, instance/network.ts).
  list(): AllowEntry[] {
    return this.entries.map((e) =>
      e.kind === 'range'
        ? {
            kind: 'range',
            cidr: `${e.range[0].toString()}/${e.range[1]}`,
            family: e.range[0].kind() === 'ipv6' ? 6 : 4,
            port: e.port,
            text: e.text,
          }
        : e.kind === 'name'
          ? { kind: 'name', name: e.name, port: e.port, text: e.text }
          : { kind: 'suffix', suffix: e.suffix, port: e.port, text: e.text },
    );
  }

  // The list as the operator wrote it (for the API's start-up log).
  describe(): string {
    return this.disabled ? 'none' : this.entries.map((e) => e.text).join(',');
  }

  // At invocation: the URL as it will be stored and used (normalised), or a CallbackUrlError saying what
  // was expected. A host allowed by name is not resolved now (it may not exist yet); any other host name
  // must resolve, now, only to addresses in the list.
  async check(raw: string): Promise<URL> {
    if (this.disabled) throw new CallbackUrlError('callbacks are disabled on this API (the operator set --callback-allow none)');
    if (raw.length > CALLBACK_URL_MAX) throw new CallbackUrlError(`must be at most ${CALLBACK_URL_MAX} characters`);
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new CallbackUrlError(`must be an absolute http or https URL, not ${shown(raw)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new CallbackUrlError(`must be an http or https URL, not ${shown(url.protocol.replace(/:$/, ''))}`);
    if (url.username || url.password) throw new CallbackUrlError('must not carry credentials (user:password@host)');
    if (!url.hostname) throw new CallbackUrlError('must name a host');
    if (url.href.length > CALLBACK_URL_MAX) throw new CallbackUrlError(`must be at most ${CALLBACK_URL_MAX} characters once encoded`);
    if (!this.byName(hostOf(url), portOf(url))) await this.targets(url);
    return url;
  }

  // At each delivery: the addresses the deliverer may connect to, checked now (the first is tried first);
  // a CallbackUrlError when the host is not allowed now (the list changed, or the name resolves elsewhere
  // now). A name allowed by a name or wildcard entry may resolve anywhere (the operator named it); any
  // other name must resolve only to addresses in the list's ranges.
  async targets(url: URL): Promise<Resolved[]> {
    const port = portOf(url);
    const host = hostOf(url);
    const refused = new CallbackUrlError(
      `host ${shown(host)} (port ${port}) is not in this API's callback allow-list (set by the operator with --callback-allow)`,
    );
    const ip = literal(host);
    if (ip) {
      if (!this.inRanges(ip, port)) throw refused;
      return [{ address: host, family: ip.kind() === 'ipv6' ? 6 : 4 }];
    }
    if (this.byName(host, port)) return this.resolve(host);
    if (!this.entries.some((e) => e.kind === 'range')) throw refused;
    let found: Resolved[];
    try {
      found = await this.resolve(host);
    } catch {
      throw refused; // one answer for "not allowed" and "does not resolve": no probing of names through us
    }
    if (!found.every((a) => this.inRanges(ipaddr.parse(a.address), port))) throw refused;
    return found;
  }

  private byName(host: string, port: number): boolean {
    return this.entries.some(
      (e) =>
        (e.port === undefined || e.port === port) &&
        ((e.kind === 'name' && e.name === host) || (e.kind === 'suffix' && host.endsWith(e.suffix))),
    );
  }

  private async resolve(host: string): Promise<Resolved[]> {
    const found = await withTimeout(this.lookup(host), this.dnsTimeoutMs, `resolving ${host}`);
    if (found.length === 0) throw new Error(`${host} has no address`);
    return found;
  }

  private inRanges(addr: Ip, port: number): boolean {
    const ip = normal(addr);
    return this.entries.some(
      (e) => e.kind === 'range' && (e.port === undefined || e.port === port) && e.range[0].kind() === ip.kind() && matches(ip, e.range),
    );
  }
}

function matches(ip: Ip, range: [Ip, number]): boolean {
  return ip.kind() === 'ipv4'
    ? (ip as ipaddr.IPv4).match(range as [ipaddr.IPv4, number])
    : (ip as ipaddr.IPv6).match(range as [ipaddr.IPv6, number]);
}

const portOf = (url: URL): number => Number(url.port) || (url.protocol === 'https:' ? 443 : 80);

// The URL's host as matched and resolved: lower case (the URL parser did it), IPv6 without its brackets,
// a name without a final dot.
export function hostOf(url: URL): string {
  const h = url.hostname;
  if (h.startsWith('[') && h.endsWith(']')) return h.slice(1, -1);
  return h.replace(/\.$/, '');
}
