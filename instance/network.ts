// The node's function network: the Docker network that the containers of functions deployed with
// network=true join (their calls, their warm containers, their dependencies step), instead of Docker's
// default bridge, from which a function would reach the host's services, the cloud's metadata service and
// every other tenant's containers.
//
// It is a bridge (FUNCTION_NETWORK, also the name of its Linux bridge) with traffic between its containers
// off (`enable_icc=false`), fenced by iptables rules the node installs in its network namespace:
//  - ZFAAS-FN, entered from DOCKER-USER (Docker's place for such rules; FORWARD when the engine manages no
//    iptables), for what the bridge's containers send through the host: nothing to a neighbour on the
//    bridge, nothing to private, link-local (169.254.0.0/16: metadata services), loopback, multicast and
//    reserved ranges, nor to any network the host itself is on;
//  - ZFAAS-FN-IN, entered from INPUT, for what they send to the host's own addresses (its address on the
//    bridge included): nothing;
//  - both let through replies to what the host opened, DNS (port 53) to the resolvers the host uses (which
//    Docker's embedded DNS forwards to from inside the container), and what the operator's allow-list
//    names (--function-network-allow: CIDRs, addresses, host names resolved when the network is set up,
//    each with an optional port), checked before the refusals;
//  - IPv6 from the bridge is refused outright (ip6tables, the same two chains): the network has no IPv6
//    and Docker disables it in its containers; the rules stand in case that ever changes.
// Refusals are ICMP "administratively prohibited", so a function's connect fails at once (EHOSTUNREACH).
//
// The node sets this up the first time a function needs it (instance.ts). Chains are replaced atomically
// (iptables-restore) and the jumps to them added only when missing, so a set-up is idempotent; every jump
// carries the comment RULE_TAG. Rules and network stay when a node stops
// (other nodes on the host use them, and rules that outlive every container refuse traffic that no longer
// exists); removeFunctionNetwork() takes both away. A node that cannot install them (no iptables, not
// root, an engine whose bridges live in another network namespace, as for a node in a container) says why
// and refuses network=true calls: it fails closed.
import type Docker from 'dockerode';
import { spawn } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { readFile, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import ipaddr from 'ipaddr.js';
import { AllowList, type AllowEntry } from '../common/allow-list.js';
import { FUNCTION_NETWORK } from '../common/container-spec.js';
import { UsageError } from '../common/errors.js';
import { errText, type Logger } from '../common/log.js';

export const RULE_TAG = 'zfaas function network';
export const FORWARD_CHAIN = 'ZFAAS-FN';
export const INPUT_CHAIN = 'ZFAAS-FN-IN';
const WHAT = 'function network allow-list';
const BRIDGE_OPTIONS = {
  'com.docker.network.bridge.name': FUNCTION_NETWORK,
  'com.docker.network.bridge.enable_icc': 'false',
};

// Refused unless the allow-list names them: every private range (RFC 1918, carrier-grade NAT), loopback,
// link-local (metadata services), and the other special-purpose, multicast and reserved ranges.
export const BLOCKED_V4 = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '224.0.0.0/4',
  '240.0.0.0/4',
];

// An IPv4 range (or one address) the allow-list opens: every port, or one (TCP and UDP).
export interface Opening {
  cidr: string;
  port?: number;
}

// The operator's list as the firewall can hold it: unset or empty opens nothing. Throws a UsageError for
// what a packet filter cannot enforce: wildcards (it sees addresses, not names), IPv6 and loopback.
export function parseFunctionNetworkAllow(raw: string | undefined): AllowEntry[] {
  if ((raw ?? '').split(',').some((i) => i.trim().toLowerCase() === 'loopback'))
    throw new UsageError(`bad ${WHAT} entry "loopback": a container's loopback is its own; name the host's address to open it`);
  const entries = AllowList.parse(raw, { what: WHAT, empty: 'none' }).list();
  for (const e of entries) {
    const bad = (why: string): never => {
      throw new UsageError(`bad ${WHAT} entry "${e.text}": ${why}`);
    };
    if (e.kind === 'suffix') bad('a wildcard cannot be enforced by a firewall, which sees addresses: name the hosts or their ranges');
    if (e.kind === 'range' && e.family === 6) bad('the function network has no IPv6');
    if ((e.kind === 'range' && ipaddr.parseCIDR(e.cidr)[0].range() === 'loopback') || (e.kind === 'name' && e.name === 'localhost'))
      bad("a container's loopback is its own; name the host's address to open it");
  }
  return entries;
}

export type Lookup4 = (name: string) => Promise<string[]>;
const lookup4: Lookup4 = async (name) => (await lookup(name, { all: true, family: 4 })).map((a) => a.address);

// The allow-list as IPv4 openings: a host name by the addresses it has now (one that does not resolve
// opens nothing, and the log says so).
export async function openingsOf(entries: AllowEntry[], resolve: Lookup4 = lookup4, log?: Logger): Promise<Opening[]> {
  const out: Opening[] = [];
  for (const e of entries) {
    if (e.kind === 'range') out.push({ cidr: e.cidr, ...(e.port ? { port: e.port } : {}) });
    if (e.kind !== 'name') continue;
    try {
      for (const address of await resolve(e.name)) out.push({ cidr: `${address}/32`, ...(e.port ? { port: e.port } : {}) });
    } catch (err) {
      log?.warn({ entry: e.text, err: errText(err) }, 'a host name of the function network allow-list does not resolve: it opens nothing');
    }
  }
  return out;
}

// The IPv4 name servers Docker's embedded DNS forwards to: those of the host's resolv.conf, or of
// systemd-resolved's upstream list when the host's names only its local stub; never loopback ones (Docker
// does not forward to them).
export async function hostResolvers(read: (file: string) => Promise<string> = (f) => readFile(f, 'utf8')): Promise<string[]> {
  const of = async (file: string): Promise<string[]> => {
    const text = await read(file).catch(() => '');
    return [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1]!).filter((a) => ipaddr.IPv4.isValidFourPartDecimal(a));
  };
  const listed = await of('/etc/resolv.conf');
  const usable = (list: string[]): string[] => [...new Set(list.filter((a) => ipaddr.IPv4.parse(a).range() !== 'loopback'))];
  const direct = usable(listed);
  if (direct.length > 0 || listed.length === 0) return direct;
  return usable(await of('/run/systemd/resolve/resolv.conf'));
}

// The IPv4 networks the host is on (each interface's, but loopback): reachable only through the list.
export function hostNetworks(ifaces: ReturnType<typeof networkInterfaces> = networkInterfaces()): string[] {
  const out = new Set<string>();
  for (const list of Object.values(ifaces)) {
    for (const a of list ?? []) {
      if (a.family !== 'IPv4' || a.internal || !a.cidr) continue;
      out.add(`${ipaddr.IPv4.networkAddressFromCIDR(a.cidr).toString()}/${a.cidr.split('/')[1]}`);
    }
  }
  return [...out].sort();
}

export interface Fence {
  bridge: string;
  openings: Opening[];
  resolvers: string[];
  hostNetworks: string[];
}

const reject = (v: 4 | 6): string => `-j REJECT --reject-with ${v === 4 ? 'icmp-admin-prohibited' : 'icmp6-adm-prohibited'}`;
const replies = (chain: string): string => `-A ${chain} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`;
const opens = (chain: string, o: Opening): string[] =>
  o.port === undefined
    ? [`-A ${chain} -d ${o.cidr} -j RETURN`]
    : ['tcp', 'udp'].map((p) => `-A ${chain} -d ${o.cidr} -p ${p} -m ${p} --dport ${o.port} -j RETURN`);

// The two IPv4 chains, as iptables-restore takes them (declaring a chain empties it: the swap is atomic).
export function rulesV4(f: Fence): string {
  const dns = f.resolvers.map((r) => ({ cidr: `${r}/32`, port: 53 }));
  const allowed = (chain: string): string[] => [...dns, ...f.openings].flatMap((o) => opens(chain, o));
  return [
    '*filter',
    `:${FORWARD_CHAIN} - [0:0]`,
    `:${INPUT_CHAIN} - [0:0]`,
    replies(FORWARD_CHAIN),
    `-A ${FORWARD_CHAIN} -o ${f.bridge} ${reject(4)}`, // a neighbour, even by way of the host's routing
    ...allowed(FORWARD_CHAIN),
    ...[...BLOCKED_V4, ...f.hostNetworks].map((cidr) => `-A ${FORWARD_CHAIN} -d ${cidr} ${reject(4)}`),
    replies(INPUT_CHAIN),
    ...allowed(INPUT_CHAIN),
    `-A ${INPUT_CHAIN} ${reject(4)}`,
    'COMMIT',
    '',
  ].join('\n');
}

export function rulesV6(): string {
  return [
    '*filter',
    `:${FORWARD_CHAIN} - [0:0]`,
    `:${INPUT_CHAIN} - [0:0]`,
    replies(FORWARD_CHAIN),
    `-A ${FORWARD_CHAIN} ${reject(6)}`,
    replies(INPUT_CHAIN),
    `-A ${INPUT_CHAIN} ${reject(6)}`,
    'COMMIT',
    '',
  ].join('\n');
}

// The jump into one of the chains, for packets that come from the bridge.
const jump = (bridge: string, target: string): string[] => ['-i', bridge, '-m', 'comment', '--comment', RULE_TAG, '-j', target];

// Runs a command (input on its stdin), resolving with its stdout; a failure says what it printed.
export type Run = (cmd: string, args: string[], input?: string) => Promise<string>;
const PATH = `${process.env.PATH ?? ''}:/usr/sbin:/sbin:/usr/bin:/bin`;
export const runCommand: Run = (cmd, args, input) =>
  new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: { ...process.env, PATH },
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      timeout: 30_000,
    });
    let out = '';
    let err = '';
    child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', (e) => reject(new Error(`${cmd}: ${errText(e)}`)));
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')}: ${err.trim() || `exit ${code ?? 'by signal'}`}`)),
    );
    if (child.stdin) {
      child.stdin.on('error', () => undefined); // a command that exits before reading: its exit code tells
      child.stdin.end(input);
    }
  });

const succeeds = (p: Promise<unknown>): Promise<boolean> =>
  p.then(
    () => true,
    () => false,
  );

async function ensureJump(run: Run, bin: string, chain: string, target: string): Promise<void> {
  const rule = jump(FUNCTION_NETWORK, target);
  if (!(await succeeds(run(bin, ['-C', chain, ...rule])))) await run(bin, ['-I', chain, '1', ...rule]);
}

// Installs (or replaces) the rules. Where ip6tables cannot be used, IPv4 alone is fenced: the network has
// no IPv6 and Docker turns it off in its containers.
export async function installRules(f: Fence, run: Run, log?: Logger): Promise<void> {
  const forward = (await succeeds(run('iptables', ['-S', 'DOCKER-USER']))) ? 'DOCKER-USER' : 'FORWARD';
  await run('iptables-restore', ['--noflush'], rulesV4(f));
  await ensureJump(run, 'iptables', forward, FORWARD_CHAIN);
  await ensureJump(run, 'iptables', 'INPUT', INPUT_CHAIN);
  try {
    await run('ip6tables-restore', ['--noflush'], rulesV6());
    await ensureJump(run, 'ip6tables', 'FORWARD', FORWARD_CHAIN);
    await ensureJump(run, 'ip6tables', 'INPUT', INPUT_CHAIN);
  } catch (e) {
    log?.warn({ err: errText(e) }, 'no IPv6 rules for the function network (it has no IPv6, and its containers have IPv6 off)');
  }
}

export type FenceState =
  { ok: true; subnet: string; gateway: string; openings: Opening[]; resolvers: string[] } | { ok: false; reason: string };

interface NetworkFacts {
  Driver?: string;
  Options?: Record<string, string>;
  IPAM?: { Config?: { Subnet?: string; Gateway?: string }[] };
}

// The network as zfaas makes it, made now if missing (by this node or another at the same time).
async function ensureNetwork(docker: Docker): Promise<{ facts: NetworkFacts; created: boolean }> {
  const inspect = (): Promise<NetworkFacts> => docker.getNetwork(FUNCTION_NETWORK).inspect() as Promise<NetworkFacts>;
  try {
    return { facts: await inspect(), created: false };
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode !== 404) throw e;
  }
  try {
    await docker.createNetwork({
      Name: FUNCTION_NETWORK,
      Driver: 'bridge',
      CheckDuplicate: true,
      Options: BRIDGE_OPTIONS,
      Labels: { zfaas: 'true', 'zfaas.role': 'function-network' },
    });
    return { facts: await inspect(), created: true };
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode !== 409) throw e;
    return { facts: await inspect(), created: false }; // another node made it meanwhile
  }
}

// Makes the network and its fence (see the top of this file). Never throws: what could not be done is
// the answer's `reason`, and the node then refuses network=true calls.
export async function setUpFunctionNetwork(o: {
  docker: Docker;
  allow: AllowEntry[];
  log: Logger;
  run?: Run;
  resolve?: Lookup4;
}): Promise<FenceState> {
  const run = o.run ?? runCommand;
  let made = false;
  try {
    const { facts, created } = await ensureNetwork(o.docker);
    made = created;
    const opts = facts.Options ?? {};
    if (facts.Driver !== 'bridge' || Object.entries(BRIDGE_OPTIONS).some(([k, v]) => opts[k] !== v))
      throw new Error(
        `the Docker network ${FUNCTION_NETWORK} exists with other settings than zfaas gives it: remove it (docker network rm ${FUNCTION_NETWORK}) (the node tries again a minute later)`,
      );
    const ipam = facts.IPAM?.Config?.[0];
    if (!ipam?.Subnet || !ipam.Gateway) throw new Error(`the Docker network ${FUNCTION_NETWORK} has no IPv4 subnet`);
    // Rules made here act only where the engine's bridge is: this process's network namespace (read from
    // /proc/self/net, which is this process's; /sys shows the namespace of whoever mounted it).
    const devices = await readFile('/proc/self/net/dev', 'utf8').catch(() => '');
    if (!new RegExp(`^\\s*${FUNCTION_NETWORK}:`, 'm').test(devices))
      throw new Error(
        `the engine's bridge ${FUNCTION_NETWORK} is not in this process's network namespace (a node in a container must use the host's network and NET_ADMIN to fence it)`,
      );
    // Traffic between containers of one bridge meets iptables only through br_netfilter.
    const nf = '/proc/sys/net/bridge/bridge-nf-call-iptables';
    const on = (await readFile(nf, 'utf8').catch(() => '')).trim();
    if (on !== '1') {
      await writeFile(nf, '1').catch((e: unknown) => {
        throw new Error(`bridged traffic does not pass iptables (${nf}: ${errText(e)}; load br_netfilter)`);
      });
    }
    const openings = await openingsOf(o.allow, o.resolve, o.log);
    const resolvers = await hostResolvers();
    await installRules({ bridge: FUNCTION_NETWORK, openings, resolvers, hostNetworks: hostNetworks() }, run, o.log);
    return { ok: true, subnet: ipam.Subnet, gateway: ipam.Gateway, openings, resolvers };
  } catch (e) {
    if (made)
      await o.docker
        .getNetwork(FUNCTION_NETWORK)
        .remove()
        .catch(() => undefined); // leave nothing unfenced
    return { ok: false, reason: errText(e) };
  }
}

// Takes the rules (every jump tagged RULE_TAG, both chains, IPv4 and IPv6) and the network away; the
// network stays while a container is on it (the engine refuses), and the rules then go all the same.
export async function removeFunctionNetwork(docker: Docker, run: Run = runCommand): Promise<void> {
  for (const bin of ['iptables', 'ip6tables']) {
    for (const [chain, target] of [
      ['DOCKER-USER', FORWARD_CHAIN],
      ['FORWARD', FORWARD_CHAIN],
      ['INPUT', INPUT_CHAIN],
    ] as const) {
      for (let i = 0; i < 16 && (await succeeds(run(bin, ['-D', chain, ...jump(FUNCTION_NETWORK, target)]))); i++);
    }
    for (const chain of [FORWARD_CHAIN, INPUT_CHAIN]) {
      // A chain that does not exist needs neither flushing nor deleting.
      await run(bin, ['-F', chain]).catch(() => undefined);
      await run(bin, ['-X', chain]).catch(() => undefined);
    }
  }
  await docker
    .getNetwork(FUNCTION_NETWORK)
    .remove()
    .catch((e: { statusCode?: number }) => {
      if (e.statusCode !== 404) throw e;
    });
}
