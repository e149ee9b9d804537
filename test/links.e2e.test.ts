// Who may speak to zfaas up's services, and what they are believed about, against real processes.
// `zfaas up` with no bind flags keeps the DB service's and the broker's sockets (ipc://) in DATA/run, and
// every data folder it makes 0700: another user of the machine cannot even connect to them. A second
// process that can connect (the same user) and poses as a node, registered under its own id or not at all,
// tells the broker that a call running on the real node ended with a forged result: neither the caller
// waiting on it nor the record ever sees that result. And what refuses to start: an operator token shorter
// than 16 characters, a broker or DB service beyond loopback without CURVE keys, a bad functions origin.
import { spawn } from 'node:child_process';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Dealer } from 'zeromq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode } from '../protocol/codec.js';
import { BROKER_PROTOCOL, type ToApi } from '../protocol/broker.js';
import { packFiles } from './helpers/archives.js';
import { freePort, http, tempDir, upload, waitFor, waitHealthy, zfaas, type CallView, type Proc } from './helpers/platform.js';

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;

// A process that exits on its own: its exit code and output.
async function exits(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  const p = zfaas(args, env);
  const code = await p.stop('SIGCONT'); // a signal that changes nothing: waits for its own exit
  return { code, out: p.output() };
}

describe('what does not start', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir('zfaas-links-refused-');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('an operator token shorter than 16 characters, on up and on api', async () => {
    const up = await exits(['up', '--port', String(await freePort()), '--data', join(dir, 'a')], { ZFAAS_TOKEN: 's3cret-15-chars' });
    expect(up.code).toBe(2);
    expect(up.out).toMatch(/the operator token \(--token or ZFAAS_TOKEN\) is 15 characters long: use at least 16/);
    const api = await exits(
      ['api', '--port', String(await freePort()), '--broker-bind', `tcp://127.0.0.1:${await freePort()}`, '--no-builtins'],
      {
        ZFAAS_TOKEN: 'short',
      },
    );
    expect(api.code).toBe(2);
    expect(api.out).toMatch(/is 5 characters long/);
  });

  it('a broker or a DB service beyond loopback without CURVE keys', async () => {
    const noKeys = { ZFAAS_CURVE_SECRET: '', ZFAAS_INSECURE_NETWORK: '' };
    const api = await exits(
      ['api', '--port', String(await freePort()), '--broker-bind', `tcp://0.0.0.0:${await freePort()}`, '--no-builtins'],
      noKeys,
    );
    expect(api.code).toBe(2);
    expect(api.out).toMatch(/the node broker would listen on tcp:\/\/0\.0\.0\.0:\d+, beyond this machine.*set CURVE keys/);
    const up = await exits(
      ['up', '--port', String(await freePort()), '--data', join(dir, 'b'), '--broker-bind', `tcp://0.0.0.0:${await freePort()}`],
      noKeys,
    );
    expect(up.code).toBe(2);
    expect(up.out).toMatch(/the node broker would listen on/);
    const db = await exits(
      ['up', '--port', String(await freePort()), '--data', join(dir, 'c'), '--db-bind', `tcp://0.0.0.0:${await freePort()}`],
      noKeys,
    );
    expect(db.code).toBe(2);
    expect(db.out).toMatch(/the DB service would listen on/);
  });

  it('a functions origin that is not one, or without its port', async () => {
    const port = await freePort();
    const cases: Array<[string[], RegExp]> = [
      [['--functions-origin', 'http://127.0.0.1:9'], /--functions-origin needs --functions-port/],
      [['--functions-port', String(port)], /--functions-port must differ from --port/],
      [['--functions-port', String(port + 1), '--functions-origin', 'https://fn.example.com/path'], /must be an origin such as/],
      [['--functions-port', String(port + 1), '--functions-origin', 'javascript:alert(1)'], /must be an origin such as/],
    ];
    for (const [flags, message] of cases) {
      const r = await exits(['up', '--port', String(port), '--data', join(dir, 'd'), ...flags]);
      expect(r.code).toBe(2);
      expect(r.out).toMatch(message);
    }
  });
});

describe("zfaas up's own links", () => {
  let data: string;
  let api: string;
  let up: Proc;
  const dealers: Dealer[] = [];

  beforeAll(async () => {
    data = join(await tempDir('zfaas-links-'), 'data');
    const port = await freePort();
    api = `http://127.0.0.1:${port}`;
    up = zfaas(['up', '--port', String(port), '--data', data, '--miniworkers', '1', '--policy', 'function']);
    await waitHealthy(api, 1, up);
  });
  afterAll(async () => {
    for (const d of dealers) d.close();
    await up?.stop();
    await rm(join(data, '..'), { recursive: true, force: true });
  });

  it('keeps its sockets and data in folders only its user may enter', async () => {
    for (const dir of ['', 'db', 'instance', 'run'])
      expect(((await stat(join(data, dir))).mode & 0o777).toString(8), dir || 'data').toBe('700');
    for (const sock of ['db.sock', 'broker.sock']) expect((await stat(join(data, 'run', sock))).isSocket()).toBe(true);
    expect(up.output()).not.toMatch(/without CURVE keys: every process of this machine can connect/);
  });

  it.skipIf(!isRoot)('another user of the machine cannot connect to the DB service or the broker', async () => {
    const script = `
      const net = require('node:net');
      const fs = require('node:fs');
      const path = require('node:path');
      const tryOne = (p) => new Promise((res) => {
        const s = net.connect(p, () => { s.destroy(); res('connected'); });
        s.on('error', (e) => res(e.code));
      });
      const list = (p) => { try { fs.readdirSync(p); return 'listed'; } catch (e) { return e.code; } };
      const [db, broker] = process.argv.slice(1);
      (async () => console.log(JSON.stringify([await tryOne(db), await tryOne(broker), list(path.dirname(db))])))();`;
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', script, join(data, 'run', 'db.sock'), join(data, 'run', 'broker.sock')], {
        uid: NOBODY,
        gid: NOBODY,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let text = '';
      child.stdout.on('data', (b: Buffer) => (text += b.toString()));
      child.once('error', reject);
      child.once('exit', () => resolve(text.trim()));
    });
    expect(JSON.parse(out)).toEqual(['EACCES', 'EACCES', 'EACCES']);
  });

  it('a process posing as a node cannot get a forged result to the caller or into the record', async () => {
    const code = 'module.exports = async () => { await new Promise((r) => setTimeout(r, 2500)); return { real: true }; };';
    expect((await upload(`${api}/registerFunction/node/slow`, await packFiles({ 'index.js': code }), 'slow.tar.gz')).status).toBe(201);
    const waiting = http<CallView>('POST', `${api}/invokeFunction`, { funcName: 'slow', params: {}, wait: true });
    const running = await waitFor(
      'the call to run on the real node',
      async () => {
        const r = await http<CallView[]>('GET', `${api}/calls?format=list&funcName=slow`);
        return r.body.find((c) => c.status === 'RUNNING');
      },
      30_000,
      up,
    );
    const forged = { status: 'DONE', result: '{"forged":true}' } as const;
    const send = async (d: Dealer, m: ToApi): Promise<void> => d.send(encode(m));
    const dealer = (id: string): Dealer => {
      const d = new Dealer({ routingId: id, linger: 0 });
      d.connect(`ipc://${join(data, 'run', 'broker.sock')}`);
      dealers.push(d);
      return d;
    };
    // Registered under an id of its own (draining: it is given no call), then claiming the call.
    const impostor = dealer('impostor');
    await send(impostor, {
      type: 'register',
      node: { id: 'impostor', capacity: 1, policy: 'none', life: 'fake', labels: {}, images: [], version: '', protocol: BROKER_PROTOCOL },
      load: { running: [running.callNum], draining: true, warm: {}, miniworkers: 0, containers: {}, stems: {} },
    });
    await send(impostor, { type: 'outcome', callNum: running.callNum, outcome: forged, ran: true, life: 'fake' });
    // Never registered: told to register first, and not heard.
    const stranger = dealer('stranger');
    await send(stranger, { type: 'outcome', callNum: running.callNum, outcome: forged, ran: true });
    const [told] = await stranger.receive();
    expect(JSON.parse(told!.toString())).toEqual({ type: 'reregister' });
    const answered = await waiting;
    expect(answered.status).toBe(200);
    expect(answered.body).toMatchObject({ callNum: running.callNum, status: 'DONE' });
    expect(JSON.parse(answered.body.result)).toEqual({ real: true });
    expect(answered.body.node).toBe(running.node);
    const record = await http<CallView>('GET', `${api}/call/${running.callNum}`);
    expect(JSON.parse(record.body.result)).toEqual({ real: true });
    expect(JSON.stringify(record.body)).not.toContain('forged');
    await waitFor(
      "the impostor's outcome refused",
      async () => (/outcome from a node that does not run the call: refused/.test(up.output()) ? true : undefined),
      5_000,
      up,
    );

    await send(impostor, { type: 'bye', life: 'fake' });
  });
});
