// Several APIs and several DB services at once on one PostgreSQL store: one throwaway PostgreSQL cluster,
// two DB services on it, two APIs (`--db d1,d2`, each with its own lease), two nodes linked to both APIs
// (`--broker b1,b2 --db d1,d2`). A steady load goes to both APIs (blocking and queued invocations); one API
// is killed (kill -9, by its own pid) in the middle of it, later the first DB service. Every call either API
// accepted ends DONE with its own result, readable with GET /call/N on the surviving API; none ran twice
// (each counts one attempt, was taken by a node once, and no API refused a second run of it); a caller
// waiting on one API for a call the other finished is answered. The longest pause in answers is printed.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { FAST_PG, PgCluster } from './helpers/postgres.js';
import { freePort, http, sleep, tempDir, upload, waitFor, waitHealthy, zfaas, type CallView, type Proc } from './helpers/platform.js';

let pg: PgCluster;
let data: string;
const dbs: Proc[] = [];
const apis: Proc[] = [];
const nodes: Proc[] = [];
const urls: string[] = [];
const dbAddrs: string[] = [];
const brokerAddrs: string[] = [];
const nodeLogs: string[] = [];

// A process of ours is killed only while it runs (its ChildProcess knows whether it exited: never a reused pid).
async function kill9(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  const gone = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGKILL');
  await gone;
}

beforeAll(async () => {
  pg = await PgCluster.start({ settings: FAST_PG });
  const store = await pg.database('zfaas');
  data = await tempDir('zfaas-multi-');
  for (let i = 0; i < 2; i++) {
    dbAddrs.push(`tcp://127.0.0.1:${await freePort()}`);
    brokerAddrs.push(`tcp://127.0.0.1:${await freePort()}`);
    urls.push(`http://127.0.0.1:${await freePort()}`);
  }
  for (const [i, bind] of dbAddrs.entries()) dbs.push(zfaas(['db', '--bind', bind, '--store', store, '--data', join(data, `db${i}`)]));
  for (const [i, url] of urls.entries())
    apis.push(
      zfaas(['api', '--port', new URL(url).port, '--db', dbAddrs.join(','), '--broker-bind', brokerAddrs[i]!, '--api-id', `api-${i + 1}`], {
        ZFAAS_LOG_LEVEL: 'debug',
      }),
    );
  // Node ids of this run alone: a node removes the containers labelled with its id when it starts.
  const run = Math.random().toString(36).slice(2, 8);
  for (const id of [`mapi-${run}-1`, `mapi-${run}-2`]) {
    const log = join(data, `${id}.log`); // whole: every call a node took is counted from it
    nodeLogs.push(log);
    nodes.push(
      zfaas(
        [
          'instance',
          ...['--broker', brokerAddrs.join(','), '--db', dbAddrs.join(',')],
          ...['--data', join(data, id), '--node-id', id, '--miniworkers', '2'],
        ],
        { ZFAAS_LOG_LEVEL: 'debug' },
        log,
      ),
    );
  }
  for (const [i, url] of urls.entries()) await waitHealthy(url, 2, apis[i]);
}, 180_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await Promise.all(apis.map((p) => p.stop()));
  await Promise.all(dbs.map((p) => p.stop()));
  await pg?.stop();
  if (data) await rm(data, { recursive: true, force: true });
}, 120_000);

interface Sent {
  api: number;
  i: number;
  callNum?: number;
}

it('keeps every call through the loss of an API and of a DB service, each run once', async () => {
  const arc = await packFiles({
    'index.js': 'module.exports = async (p) => { await new Promise((r) => setTimeout(r, 100)); return { i: p.i }; };',
  });
  expect((await upload(`${urls[0]}/registerFunction/node/echo`, arc, 'echo.tar.gz')).status).toBe(201);

  // A caller waiting on API 2 for calls API 1 accepted (and dispatched, and recorded) is answered there.
  for (const i of [-1, -2, -3]) {
    const made = await http<CallView>('POST', `${urls[0]}/invokeFunction`, { funcName: 'echo', params: { i } });
    expect(made.status).toBe(202);
    const seen = await http<CallView>('GET', `${urls[1]}/call/${made.body.callNum}?wait=30`);
    expect(seen.status).toBe(200);
    expect(seen.body).toMatchObject({ status: 'DONE', api: 'api-1' });
    expect(JSON.parse(seen.body.result)).toEqual({ i });
  }

  const down = new Set<number>();
  const sent: Sent[] = [];
  const answeredAt: number[] = [];
  let next = 0;
  let stop = false;
  // A client that knows both APIs: it uses one, and the other when that one does not answer.
  const worker = async (w: number): Promise<void> => {
    while (!stop) {
      const i = next++;
      const api = down.has(w % 2) ? 1 - (w % 2) : w % 2;
      const s: Sent = { api, i };
      sent.push(s);
      try {
        const r = await http<CallView>('POST', `${urls[api]}/invokeFunction`, { funcName: 'echo', params: { i }, wait: i % 2 === 0 });
        if (r.status === 200 || r.status === 202) {
          s.callNum = r.body.callNum;
          answeredAt.push(Date.now());
        }
      } catch {
        down.add(api); // refused: that API is gone; the call may have been accepted, and must end all the same
      }
      await sleep(30);
    }
  };
  const load = Promise.all([0, 1, 2, 3].map(worker));
  const t0 = Date.now();
  await sleep(5_000);
  await kill9(apis[0]!);
  const apiKilledAt = Date.now();
  await sleep(10_000);
  await kill9(dbs[0]!);
  const dbKilledAt = Date.now();
  await sleep(8_000);
  stop = true;
  await load;

  const survivor = urls[1]!;
  const accepted = sent.filter((s) => s.callNum !== undefined);
  for (const s of accepted) {
    const c = await waitFor(
      `call ${s.callNum} to end`,
      async () => {
        const r = await http<CallView>('GET', `${survivor}/call/${s.callNum}`);
        return r.status === 200 && ['DONE', 'ERROR', 'TIMEOUT'].includes(r.body.status) ? r.body : undefined;
      },
      90_000,
    );
    expect({ status: c.status, attempts: c.attempts, error: c.error }, `call ${s.callNum} (${c.node})`).toEqual({
      status: 'DONE',
      attempts: 1,
      error: undefined,
    });
    expect(JSON.parse(c.result)).toEqual({ i: s.i });
  }
  // Every call in the store, also those whose caller lost the answer with the API: ended, with its own result.
  const all = await waitFor(
    'every call to end',
    async () => {
      const r = await http<Array<CallView & { params: { i: number } }>>('GET', `${survivor}/calls?format=list&limit=10000`);
      return r.body.every((c) => c.status === 'DONE') ? r.body : undefined;
    },
    90_000,
  );
  for (const c of all) {
    expect(c.attempts, `call ${c.callNum}`).toBe(1);
    expect(JSON.parse(c.result)).toEqual({ i: c.params.i });
  }
  expect(all.length).toBeGreaterThanOrEqual(accepted.length);
  // No run was refused for being a second one (a run "left behind" or on another node than the record's).
  const logs = apis.map((a) => a.output()).join('\n');
  expect(logs).not.toMatch(/left behind|it runs on node/);
  // Each call was taken by a node once, whichever API sent it.
  const taken = new Map<number, number>();
  for (const file of nodeLogs)
    for (const line of (await readFile(file, 'utf8')).split('\n')) {
      if (!line.includes('"call accepted"')) continue;
      const { callNum } = JSON.parse(line) as { callNum: number };
      taken.set(callNum, (taken.get(callNum) ?? 0) + 1);
    }
  for (const c of all) expect(taken.get(c.callNum), `call ${c.callNum} taken by a node`).toBe(1);
  // What happened is what was meant to: the surviving API took over API 1's calls, and moved to DB service 2.
  expect(apis[1]!.output()).toMatch(/"from":\["api-1"\].*took over the calls of APIs whose lease lapsed/);
  expect(apis[1]!.output()).toMatch(/DB service stopped answering: moved to the next one/);

  answeredAt.sort((a, b) => a - b);
  let pause = 0;
  let pauseAt = 0;
  for (let k = 1; k < answeredAt.length; k++) {
    if (answeredAt[k]! - answeredAt[k - 1]! <= pause) continue;
    pause = answeredAt[k]! - answeredAt[k - 1]!;
    pauseAt = answeredAt[k - 1]! - t0;
  }
  console.log(
    `multi-api: ${accepted.length} calls accepted (${all.length} in the store) over ${((Date.now() - t0) / 1000).toFixed(0)} s; ` +
      `API 1 killed at ${((apiKilledAt - t0) / 1000).toFixed(1)} s, DB service 1 at ${((dbKilledAt - t0) / 1000).toFixed(1)} s; ` +
      `longest pause in answers ${pause} ms (from ${(pauseAt / 1000).toFixed(1)} s)`,
  );
}, 300_000);
