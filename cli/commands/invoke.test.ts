// `zfaas invoke --callback-url URL`: sent as the field callbackUrl of POST /invokeFunction (with --async and
// without), an URL that is not http(s) refused locally, and the flag refused with the web form and with
// --batch (exit 2, saying why), before anything is sent.
import { describe, expect, it } from 'vitest';
import { EXIT } from '../client/errors.js';
import { runCli } from '../../test/helpers/cli-run.js';

const API = 'http://api.test';
const HOOK = 'https://hooks.example.com/zfaas?k=1';

const call = (status: string): object => ({
  callNum: 7,
  funcName: 'report',
  version: 2,
  params: { day: 'mon' },
  status,
  result: status === 'DONE' ? '{"ok":true}' : '',
  attempts: 1,
  createdAt: '2026-11-23T00:00:00.000Z',
  callback: { url: HOOK, state: 'waiting', deliveries: [] },
});

/** A fake API answering POST /invokeFunction; records each request's URL and JSON body. */
function fakeApi(status: string, code: number): { fetchFn: typeof fetch; sent: Array<{ url: string; body: unknown }> } {
  const sent: Array<{ url: string; body: unknown }> = [];
  const fetchFn = async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    sent.push({ url: String(url), body: init?.body === undefined ? undefined : (JSON.parse(String(init.body)) as unknown) });
    return Response.json(call(status), { status: code });
  };
  return { fetchFn, sent };
}

const invoke = (fetchFn: typeof fetch, ...args: string[]) => runCli(['invoke', ...args], { fetchFn, env: { ZFAAS_API: API } });

describe('invoke --callback-url', () => {
  it('sends callbackUrl with the call, waited for or not', async () => {
    const waited = fakeApi('DONE', 200);
    expect(await invoke(waited.fetchFn, 'report', 'day=mon', '--callback-url', HOOK)).toEqual({
      code: EXIT.OK,
      printed: ['{\n  "ok": true\n}'],
      notes: [],
    });
    expect(waited.sent).toEqual([
      { url: `${API}/invokeFunction`, body: { funcName: 'report', params: { day: 'mon' }, wait: 240, callbackUrl: HOOK } },
    ]);

    const queued = fakeApi('PENDING', 202);
    expect(await invoke(queued.fetchFn, 'report', '--async', '--callback-url', HOOK)).toMatchObject({ code: EXIT.OK, printed: ['7'] });
    expect(queued.sent[0]?.body).toEqual({ funcName: 'report', params: {}, wait: false, callbackUrl: HOOK });
  });

  it('sends no callbackUrl without the flag', async () => {
    const api = fakeApi('DONE', 200);
    await invoke(api.fetchFn, 'report');
    expect(api.sent[0]?.body).toEqual({ funcName: 'report', params: {}, wait: 240 });
  });

  it('refuses a URL that is not http(s), sending nothing', async () => {
    for (const bad of ['ftp://x/y', 'hooks.example.com', 'file:///etc/passwd']) {
      const r = await invoke(fakeApi('DONE', 200).fetchFn, 'report', '--callback-url', bad);
      expect(r).toEqual({
        code: EXIT.USAGE,
        printed: [],
        notes: [`zfaas: --callback-url: expected an http:// or https:// URL, got ${JSON.stringify(bad)}`],
      });
    }
  });

  it('refuses it with a web request or a batch (exit 2), saying why', async () => {
    const web = await runCli(['invoke', 'api', '--path', '/users/1', '--callback-url', HOOK]);
    expect(web).toEqual({
      code: EXIT.USAGE,
      printed: [],
      notes: [
        "zfaas: --callback-url goes with a JSON call (key=value, --params, --file), not a web request (--method, --path, -q, -H, -d), which answers with the function's own response: drop one or the other",
      ],
    });
    expect((await runCli(['invoke', 'api', '-X', 'POST', '-d', 'x', '--callback-url', HOOK])).code).toBe(EXIT.USAGE);
    expect(await runCli(['invoke', 'resize', '--batch', 'items.jsonl', '--callback-url', HOOK])).toEqual({
      code: EXIT.USAGE,
      printed: [],
      notes: ['zfaas: --callback-url goes with one call: a batch takes none (follow it with "zfaas batch ID")'],
    });
  });
});
