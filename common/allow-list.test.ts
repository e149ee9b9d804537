// The callback allow-list: the operator's entries (and the errors for bad ones), the URL checks made at
// invocation, and the addresses checked at delivery, with a fake DNS so that a name can resolve one way at
// invocation and another at delivery (rebinding).
import { describe, expect, it } from 'vitest';
import { UsageError } from './errors.js';
import { AllowList, CallbackUrlError, type Lookup, type Resolved } from './allow-list.js';

// A DNS that answers from a table (mutable, to change a name's addresses between two checks).
function fakeDns(table: Record<string, string[]>): { lookup: Lookup; asked: string[] } {
  const asked: string[] = [];
  const lookup: Lookup = async (host) => {
    asked.push(host);
    const found = table[host];
    if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return found.map((address): Resolved => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return { lookup, asked };
}

const refusal = async (list: AllowList, url: string): Promise<string> => {
  try {
    await list.check(url);
  } catch (e) {
    expect(e).toBeInstanceOf(CallbackUrlError);
    return (e as Error).message;
  }
  throw new Error(`${url} was accepted`);
};

describe('the operator list', () => {
  it('is loopback only when unset or empty', async () => {
    const { lookup } = fakeDns({});
    for (const raw of [undefined, '', '  ']) {
      const list = AllowList.parse(raw, { lookup });
      expect(list.describe()).toBe('127.0.0.0/8,::1,localhost');
      for (const ok of ['http://127.0.0.1:9/x', 'http://127.9.8.7/', 'http://[::1]:8080/', 'https://localhost/', 'http://LOCALHOST./a'])
        await expect(list.check(ok)).resolves.toBeInstanceOf(URL);
      for (const no of ['http://10.1.2.3/x', 'http://0.0.0.0/', 'http://[::]/', 'http://example.com/', 'http://169.254.169.254/'])
        expect(await refusal(list, no)).toMatch(/is not in this API's callback allow-list/);
    }
  });

  it('takes CIDRs, addresses, names and wildcards, each with an optional port', async () => {
    const { lookup } = fakeDns({});
    const list = AllowList.parse('10.0.0.0/8, 192.168.1.7:8443, [fd00::/8]:443, 2001:db8::1, hooks.example.com, *.corp.example:80', {
      lookup,
    });
    const accepted = [
      'http://10.200.3.4/',
      'https://10.0.0.1:9999/a?b=c',
      'https://192.168.1.7:8443/',
      'https://[fd12::5]/',
      'http://[2001:db8::1]:1234/',
      'http://hooks.example.com/',
      'https://HOOKS.example.com:4443/',
      'http://a.corp.example/',
      'http://a.b.corp.example:80/',
      'http://[::ffff:10.1.1.1]/', // an IPv4-mapped IPv6 address is the IPv4 address it carries
    ];
    for (const ok of accepted) await expect(list.check(ok), ok).resolves.toBeInstanceOf(URL);
    const refused = [
      'http://11.0.0.1/',
      'http://192.168.1.7/', // port 80, the entry says 8443
      'http://[fd12::5]:8080/', // port 8080, the entry says 443
      'http://[2001:db8::2]/',
      'http://other.example.com/',
      'http://corp.example/', // a wildcard is for the names below the domain
      'https://a.corp.example/', // port 443, the entry says 80
      'http://127.0.0.1/', // the operator's list replaces the default
    ];
    for (const no of refused) expect(await refusal(list, no), no).toMatch(/not in this API's callback allow-list/);
  });

  it("keeps loopback with the 'loopback' keyword, and refuses every callback with 'none'", async () => {
    const list = AllowList.parse('loopback,10.0.0.0/8');
    await expect(list.check('http://127.0.0.1:1/')).resolves.toBeInstanceOf(URL);
    await expect(list.check('http://10.1.2.3/')).resolves.toBeInstanceOf(URL);
    const none = AllowList.parse('none');
    expect(none.disabled).toBe(true);
    expect(await refusal(none, 'http://127.0.0.1/')).toMatch(/callbacks are disabled on this API/);
  });

  it('names a bad entry and says what was expected', () => {
    const bad: [string, RegExp][] = [
      ['10.0.0.0/33', /"10\.0\.0\.0\/33".*ADDRESS\/BITS \(0 to 32\)/],
      ['fd00::/129', /0 to 128/],
      ['10.1/8', /a CIDR range is ADDRESS\/BITS/],
      ['10.0.0.1:0', /the port must be 1 to 65535/],
      ['host:http', /the port must be 1 to 65535/],
      ['[10.0.0.1]:80', /brackets are for IPv6/],
      ['*.com', /a wildcard is \*\.DOMAIN with at least two labels/],
      ['*', /to allow every address write 0\.0\.0\.0\/0,::\/0/],
      ['bad host!', /expected a CIDR range .* a host name .* a wildcard/],
      ['10.1', /expected a CIDR range/], // not an address in the strict form, and not a name
      ['none,10.0.0.0/8', /'none' cannot be combined/],
    ];
    for (const [raw, message] of bad) {
      let thrown: unknown;
      try {
        AllowList.parse(raw);
      } catch (e) {
        thrown = e;
      }
      expect(thrown, raw).toBeInstanceOf(UsageError);
      expect((thrown as Error).message, raw).toMatch(message);
    }
  });
});

describe('a callback URL at invocation', () => {
  const list = AllowList.parse(undefined, fakeDns({}));

  it('is refused, saying what was expected, when it is no http(s) URL, carries credentials or is too long', async () => {
    expect(await refusal(list, 'not a url')).toBe('must be an absolute http or https URL, not "not a url"');
    expect(await refusal(list, '/relative/path')).toMatch(/must be an absolute http or https URL/);
    expect(await refusal(list, 'ftp://127.0.0.1/x')).toBe('must be an http or https URL, not "ftp"');
    expect(await refusal(list, 'file:///etc/passwd')).toMatch(/not "file"/);
    expect(await refusal(list, 'http://user:pw@127.0.0.1/')).toBe('must not carry credentials (user:password@host)');
    expect(await refusal(list, 'http://user@127.0.0.1/')).toMatch(/credentials/);
    expect(await refusal(list, `http://127.0.0.1/${'a'.repeat(2048)}`)).toBe('must be at most 2048 characters');
    // short enough as sent, longer once percent-encoded: the stored form counts too
    expect(await refusal(list, `http://127.0.0.1/${'é'.repeat(1000)}`)).toMatch(/at most 2048 characters once encoded/);
  });

  it('is normalised as the URL parser reads it: what is checked is what is stored and used', async () => {
    expect((await list.check('HTTP://LocalHost:80/a/../b?c=1#frag')).href).toBe('http://localhost/b?c=1#frag');
    // other spellings of an IPv4 address are that address, and are checked as such
    expect((await list.check('http://0x7f.1:8080/')).href).toBe('http://127.0.0.1:8080/');
    expect(await refusal(list, 'http://0x0a.1/')).toMatch(/"10\.0\.0\.1"/);
    expect(await refusal(list, 'http://2130706433.example/')).toMatch(/not in this API's callback allow-list/);
  });

  it('resolves a name allowed only through ranges, and refuses it unless every address is in them', async () => {
    const dns = fakeDns({ 'in.test': ['127.0.0.5', '::1'], 'mixed.test': ['127.0.0.1', '10.0.0.1'], 'out.test': ['93.184.215.14'] });
    const l = AllowList.parse(undefined, { lookup: dns.lookup });
    await expect(l.check('http://in.test:8080/')).resolves.toBeInstanceOf(URL);
    const notAllowed = /^host "(mixed|out|nowhere)\.test" \(port 80\) is not in this API's callback allow-list/;
    expect(await refusal(l, 'http://mixed.test/')).toMatch(notAllowed);
    expect(await refusal(l, 'http://out.test/')).toMatch(notAllowed);
    // a name that does not resolve gets the same answer: callers cannot probe names through the API
    expect(await refusal(l, 'http://nowhere.test/')).toMatch(notAllowed);
    expect(dns.asked).toEqual(['in.test', 'mixed.test', 'out.test', 'nowhere.test']);
  });

  it('does not resolve a name the list allows by name (it may not exist yet)', async () => {
    const dns = fakeDns({});
    const l = AllowList.parse('hooks.example.com', { lookup: dns.lookup });
    await expect(l.check('https://hooks.example.com/x')).resolves.toBeInstanceOf(URL);
    expect(dns.asked).toEqual([]);
  });

  it('gives up on a DNS that does not answer, within its time', async () => {
    const hang: Lookup = () => new Promise(() => {});
    const l = AllowList.parse(undefined, { lookup: hang, dnsTimeoutMs: 50 });
    const t0 = Date.now();
    expect(await refusal(l, 'http://slow.test/')).toMatch(/not in this API's callback allow-list/);
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});

describe('a callback target at delivery', () => {
  it('is the addresses checked now: a name that resolves elsewhere since the invocation is refused', async () => {
    const table: Record<string, string[]> = { 'rebind.test': ['127.0.0.1'] };
    const l = AllowList.parse(undefined, fakeDns(table));
    const url = await l.check('http://rebind.test:9000/hook');
    expect(await l.targets(url)).toEqual([{ address: '127.0.0.1', family: 4 }]);
    table['rebind.test'] = ['169.254.169.254'];
    await expect(l.targets(url)).rejects.toThrow(/"rebind\.test" \(port 9000\) is not in this API's callback allow-list/);
    table['rebind.test'] = ['127.0.0.1', '::ffff:169.254.169.254'];
    await expect(l.targets(url)).rejects.toThrow(CallbackUrlError);
  });

  it('is every address of a name the list allows by name, and the literal address of an IP URL', async () => {
    const l = AllowList.parse('localhost,10.0.0.0/8', fakeDns({ localhost: ['::1', '127.0.0.1'] }));
    expect(await l.targets(new URL('http://localhost:1234/'))).toEqual([
      { address: '::1', family: 6 },
      { address: '127.0.0.1', family: 4 },
    ]);
    expect(await l.targets(new URL('http://10.9.9.9/'))).toEqual([{ address: '10.9.9.9', family: 4 }]);
    await expect(l.targets(new URL('http://127.0.0.1/'))).rejects.toThrow(CallbackUrlError);
  });
});
