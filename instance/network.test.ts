// The function network's fence without Docker or a firewall: the operator's allow-list as a firewall can
// hold it (what it refuses and why), host names by their addresses, the resolvers Docker's DNS forwards to,
// the host's own networks, the rules in their order (replies, neighbours, DNS, the list, then the refusals),
// and the commands that install them (idempotently) and take them away, against a recording fake.
import { describe, expect, it } from 'vitest';
import { UsageError } from '../common/errors.js';
import {
  BLOCKED_V4,
  FORWARD_CHAIN,
  hostNetworks,
  hostResolvers,
  INPUT_CHAIN,
  installRules,
  openingsOf,
  parseFunctionNetworkAllow,
  removeFunctionNetwork,
  RULE_TAG,
  rulesV4,
  rulesV6,
  type Fence,
  type Run,
} from './network.js';
import type Docker from 'dockerode';

const refusal = (raw: string): string => {
  try {
    parseFunctionNetworkAllow(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  return 'accepted';
};

describe('the function network allow-list', () => {
  it('opens nothing unless told, and takes the callback list`s CIDRs, addresses and host names with ports', () => {
    expect(parseFunctionNetworkAllow(undefined)).toEqual([]);
    expect(parseFunctionNetworkAllow('')).toEqual([]);
    expect(parseFunctionNetworkAllow('none')).toEqual([]);
    expect(parseFunctionNetworkAllow('10.1.0.0/16, 10.2.3.4:5432,pypi.internal:443')).toEqual([
      { kind: 'range', cidr: '10.1.0.0/16', family: 4, text: '10.1.0.0/16' },
      { kind: 'range', cidr: '10.2.3.4/32', family: 4, port: 5432, text: '10.2.3.4:5432' },
      { kind: 'name', name: 'pypi.internal', port: 443, text: 'pypi.internal:443' },
    ]);
  });

  it('refuses what a firewall cannot hold, naming the entry and the list', () => {
    expect(refusal('*.example.com')).toMatch(/^bad function network allow-list entry "\*\.example\.com": a wildcard cannot be enforced/);
    expect(refusal('fd00::/8')).toMatch(/"fd00::\/8": the function network has no IPv6/);
    expect(refusal('loopback')).toMatch(/"loopback": a container's loopback is its own/);
    expect(refusal('127.0.0.1')).toMatch(/"127\.0\.0\.1": a container's loopback is its own/);
    expect(refusal('localhost:80')).toMatch(/loopback is its own/);
    expect(refusal('10.0.0.0/33')).toMatch(/^bad function network allow-list entry "10\.0\.0\.0\/33": a CIDR range/);
    expect(refusal('10.0.0.1:0')).toMatch(/the port must be 1 to 65535/);
    expect(refusal('none,10.0.0.1')).toMatch(/^bad function network allow-list: 'none' cannot be combined/);
  });

  it('opens a host name at the addresses it has at start, and nothing for one that does not resolve', async () => {
    const entries = parseFunctionNetworkAllow('10.9.0.0/16,db.internal:5432,gone.internal');
    const resolve = async (name: string): Promise<string[]> => {
      if (name === 'db.internal') return ['10.1.1.1', '10.1.1.2'];
      throw new Error('ENOTFOUND');
    };
    expect(await openingsOf(entries, resolve)).toEqual([
      { cidr: '10.9.0.0/16' },
      { cidr: '10.1.1.1/32', port: 5432 },
      { cidr: '10.1.1.2/32', port: 5432 },
    ]);
  });
});

describe('what the host is', () => {
  it("reads the resolvers Docker's DNS forwards to, skipping loopback stubs for systemd-resolved's upstream list", async () => {
    const files = (m: Record<string, string>) => async (f: string) => {
      if (m[f] === undefined) throw new Error('ENOENT');
      return m[f];
    };
    expect(
      await hostResolvers(files({ '/etc/resolv.conf': 'search x\nnameserver 10.0.0.2\nnameserver 10.0.0.2\nnameserver fd00::1\n' })),
    ).toEqual(['10.0.0.2']);
    const stub = { '/etc/resolv.conf': 'nameserver 127.0.0.53\n', '/run/systemd/resolve/resolv.conf': 'nameserver 192.168.1.1\n' };
    expect(await hostResolvers(files(stub))).toEqual(['192.168.1.1']);
    expect(await hostResolvers(files({}))).toEqual([]);
  });

  it('lists the IPv4 networks of its interfaces, not loopback', () => {
    const a = (address: string, cidr: string, internal = false) => ({
      address,
      cidr,
      internal,
      family: 'IPv4' as const,
      netmask: '',
      mac: '',
    });
    const v6 = { address: 'fd00::2', cidr: 'fd00::2/64', internal: false, family: 'IPv6' as const, netmask: '', mac: '', scopeid: 0 };
    expect(
      hostNetworks({
        lo: [a('127.0.0.1', '127.0.0.1/8', true)],
        eth0: [a('203.0.113.7', '203.0.113.7/24'), v6],
        eth1: [a('10.3.4.5', '10.3.4.5/16')],
      }),
    ).toEqual(['10.3.0.0/16', '203.0.113.0/24']);
  });
});

describe('the rules', () => {
  const fence: Fence = {
    bridge: 'zfaas-fn',
    openings: [{ cidr: '10.9.0.0/16' }, { cidr: '10.1.1.1/32', port: 5432 }],
    resolvers: ['10.0.0.2'],
    hostNetworks: ['203.0.113.0/24'],
  };
  const lines = (text: string, chain: string): string[] => text.split('\n').filter((l) => l.startsWith(`-A ${chain} `));

  it('let replies, DNS and the list through before refusing neighbours, private, link-local and the host`s networks', () => {
    const text = rulesV4(fence);
    expect(text.split('\n').slice(0, 3)).toEqual(['*filter', `:${FORWARD_CHAIN} - [0:0]`, `:${INPUT_CHAIN} - [0:0]`]);
    expect(text.trimEnd().endsWith('COMMIT')).toBe(true);
    const reject = '-j REJECT --reject-with icmp-admin-prohibited';
    expect(lines(text, FORWARD_CHAIN)).toEqual([
      `-A ${FORWARD_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`,
      `-A ${FORWARD_CHAIN} -o zfaas-fn ${reject}`,
      `-A ${FORWARD_CHAIN} -d 10.0.0.2/32 -p tcp -m tcp --dport 53 -j RETURN`,
      `-A ${FORWARD_CHAIN} -d 10.0.0.2/32 -p udp -m udp --dport 53 -j RETURN`,
      `-A ${FORWARD_CHAIN} -d 10.9.0.0/16 -j RETURN`,
      `-A ${FORWARD_CHAIN} -d 10.1.1.1/32 -p tcp -m tcp --dport 5432 -j RETURN`,
      `-A ${FORWARD_CHAIN} -d 10.1.1.1/32 -p udp -m udp --dport 5432 -j RETURN`,
      ...[...BLOCKED_V4, '203.0.113.0/24'].map((cidr) => `-A ${FORWARD_CHAIN} -d ${cidr} ${reject}`),
    ]);
    for (const range of ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '169.254.0.0/16', '100.64.0.0/10', '127.0.0.0/8'])
      expect(BLOCKED_V4).toContain(range);
    // To the host itself: replies, DNS and the list, then nothing.
    const input = lines(text, INPUT_CHAIN);
    expect(input[0]).toBe(`-A ${INPUT_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN`);
    expect(input.at(-1)).toBe(`-A ${INPUT_CHAIN} ${reject}`);
    expect(input).toContain(`-A ${INPUT_CHAIN} -d 10.9.0.0/16 -j RETURN`);
    expect(input).toHaveLength(7);
  });

  it('refuse every IPv6 packet from the bridge', () => {
    const text = rulesV6();
    expect(lines(text, FORWARD_CHAIN).at(-1)).toBe(`-A ${FORWARD_CHAIN} -j REJECT --reject-with icmp6-adm-prohibited`);
    expect(lines(text, INPUT_CHAIN).at(-1)).toBe(`-A ${INPUT_CHAIN} -j REJECT --reject-with icmp6-adm-prohibited`);
  });
});

// A firewall that records the commands and answers from what it holds: the jumps (two nodes may both have
// added one), whether DOCKER-USER exists, whether ip6tables works.
class FakeFirewall {
  readonly calls: string[] = [];
  readonly jumps: string[] = [];
  constructor(
    private readonly dockerUser = true,
    private readonly v6 = true,
  ) {}
  run: Run = async (cmd, args, input) => {
    this.calls.push([cmd, ...args].join(' ') + (input ? ` <<${input.split('\n').length} lines` : ''));
    const v6 = cmd.startsWith('ip6tables');
    if (v6 && !this.v6) throw new Error(`${cmd}: not available`);
    const [op, chain] = args;
    const key = `${cmd} ${chain} ${args.slice(op === '-I' ? 3 : 2).join(' ')}`;
    if (op === '-S') {
      if (chain === 'DOCKER-USER' && !this.dockerUser) throw new Error('No chain/target/match by that name');
      return '';
    }
    const at = this.jumps.indexOf(key);
    if ((op === '-C' || op === '-D') && at < 0) throw new Error('Bad rule');
    if (op === '-I') this.jumps.push(key);
    if (op === '-D') this.jumps.splice(at, 1);
    return '';
  };
}

const fence: Fence = { bridge: 'zfaas-fn', openings: [], resolvers: [], hostNetworks: [] };
const tag = `-i zfaas-fn -m comment --comment ${RULE_TAG}`;

describe('installing and removing the rules', () => {
  it('swaps the chains atomically and adds each jump once, in DOCKER-USER and INPUT, however often it runs', async () => {
    const fw = new FakeFirewall();
    await installRules(fence, fw.run);
    await installRules(fence, fw.run);
    expect(fw.calls.filter((c) => c.startsWith('iptables-restore --noflush <<'))).toHaveLength(2);
    expect(fw.calls.filter((c) => c.startsWith('ip6tables-restore --noflush <<'))).toHaveLength(2);
    expect(fw.calls.filter((c) => c.includes(' -I '))).toEqual([
      `iptables -I DOCKER-USER 1 ${tag} -j ${FORWARD_CHAIN}`,
      `iptables -I INPUT 1 ${tag} -j ${INPUT_CHAIN}`,
      `ip6tables -I FORWARD 1 ${tag} -j ${FORWARD_CHAIN}`,
      `ip6tables -I INPUT 1 ${tag} -j ${INPUT_CHAIN}`,
    ]);
  });

  it('uses FORWARD when the engine keeps no DOCKER-USER chain, and fences IPv4 alone without ip6tables', async () => {
    const fw = new FakeFirewall(false, false);
    await installRules(fence, fw.run);
    expect(fw.calls.filter((c) => c.includes(' -I '))).toEqual([
      `iptables -I FORWARD 1 ${tag} -j ${FORWARD_CHAIN}`,
      `iptables -I INPUT 1 ${tag} -j ${INPUT_CHAIN}`,
    ]);
  });

  it('takes every tagged jump and both chains away, then the network', async () => {
    const fw = new FakeFirewall();
    await installRules(fence, fw.run);
    fw.jumps.push(`iptables INPUT ${tag} -j ${INPUT_CHAIN}`); // a second node's, added at the same time
    expect(fw.jumps).toHaveLength(5);
    let removed = 0;
    const docker = { getNetwork: () => ({ remove: async () => void removed++ }) } as unknown as Docker;
    await removeFunctionNetwork(docker, fw.run);
    expect(fw.jumps).toEqual([]);
    for (const bin of ['iptables', 'ip6tables'])
      for (const chain of [FORWARD_CHAIN, INPUT_CHAIN]) expect(fw.calls).toContain(`${bin} -X ${chain}`);
    expect(removed).toBe(1);
  });
});
