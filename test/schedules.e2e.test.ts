// Schedules against real services, as separate processes (zfaas db / api / instance): a schedule every
// 2 s runs a node function while the API is killed (SIGKILL) and restarted, then while a second API runs
// on the same DB by mistake. No tick makes two calls (each tick's idempotency key), none is lost while an
// API is up (beyond one at each edge), `skip` fires nothing for the ticks the API was down for, and
// `once` fires one call for the latest of them when it is back. Bad input is 400 naming the field.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { freePort, http, sleep, tempDir, upload, waitCall, waitHealthy, zfaas, type Proc } from './helpers/platform.js';

interface ScheduleView {
  id: string;
  funcName: string;
  cron: string;
  timezone: string;
  missed: string;
  next: string | null;
  lastRun?: { tick: string; callNum: number };
}
interface ScheduledCall {
  callNum: number;
  status: string;
  schedule?: { id: string; tick: string };
}

let data: string;
let db: Proc;
let api: Proc;
let api2: Proc | undefined;
let inst: Proc;
let url: string;
let dbAddr: string;
let brokerAddr: string;
let port: number;

const startApi = (p: number, broker: string): Proc => zfaas(['api', '--port', String(p), '--db', dbAddr, '--broker-bind', broker]);

beforeAll(async () => {
  data = await tempDir();
  port = await freePort();
  dbAddr = `tcp://127.0.0.1:${await freePort()}`;
  brokerAddr = `tcp://127.0.0.1:${await freePort()}`;
  url = `http://127.0.0.1:${port}`;
  db = zfaas(['db', '--bind', dbAddr, '--data', join(data, 'db')]);
  api = startApi(port, brokerAddr);
  inst = zfaas(['instance', '--broker', brokerAddr, '--db', dbAddr, '--data', join(data, 'instance'), '--miniworkers', '2']);
  await waitHealthy(url, 1, api);
  const arc = await packFiles({ 'index.js': 'module.exports = (p) => ({ tick: p.tag });' });
  expect((await upload(`${url}/registerFunction/node/ticker`, arc, 'ticker.tar.gz')).status).toBe(201);
});

afterAll(async () => {
  await Promise.all([inst?.stop(), api2?.stop(), api?.stop(), db?.stop()]);
  await rm(data, { recursive: true, force: true });
});

// Even seconds t with from < t <= to (ms): the ticks of '*/2 * * * * *' in that window.
const ticksIn = (from: number, to: number): number => {
  let n = 0;
  for (let t = Math.floor(from / 2000) * 2000 + 2000; t <= to; t += 2000) n++;
  return n;
};

it('refuses a bad cron, time zone or missed value, naming the field', async () => {
  const post = (body: unknown) => http<{ error: string }>('POST', `${url}/functions/ticker/schedules`, body);
  const cron = await post({ cron: 'every minute' });
  expect(cron.status).toBe(400);
  expect(cron.body.error).toMatch(/^invalid cron: /);
  expect((await post({ cron: '* * * * * * 2030' })).body.error).toMatch(/^invalid cron: /);
  const tz = await post({ cron: '* * * * *', timezone: 'Mars/Olympus' });
  expect(tz.status).toBe(400);
  expect(tz.body.error).toMatch(/^invalid timezone: /);
  const missed = await post({ cron: '* * * * *', missed: 'twice' });
  expect(missed.status).toBe(400);
  expect(missed.body.error).toMatch(/missed/);
  expect((await http('POST', `${url}/functions/nope/schedules`, { cron: '* * * * *' })).status).toBe(404);
  expect((await http('DELETE', `${url}/functions/ticker/schedules/00aa`)).status).toBe(404);
  expect((await http<ScheduleView[]>('GET', `${url}/functions/ticker/schedules`)).body).toEqual([]);
});

it('fires each tick once across an API killed and restarted, and with two APIs on one DB', async () => {
  const add = async (missed: string, tag: string): Promise<ScheduleView> => {
    const r = await http<ScheduleView>('POST', `${url}/functions/ticker/schedules`, {
      cron: '*/2 * * * * *',
      timezone: 'UTC',
      params: { tag },
      missed,
    });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ cron: '*/2 * * * * *', timezone: 'UTC', missed });
    return r.body;
  };
  const skip = await add('skip', 'skip');
  const once = await add('once', 'once');
  const up1 = Date.now();
  await sleep(8000);

  // The API dies without a word, stays down for a few ticks, and comes back.
  const killedAt = Date.now();
  api.child.kill('SIGKILL');
  await api.stop();
  await sleep(5000);
  const restartedAt = Date.now();
  api = startApi(port, brokerAddr);
  await waitHealthy(url, 0, api);
  const up2 = Date.now();
  await sleep(8000);

  // A second API on the same DB (its own port and broker, no node): both fire every tick.
  const port2 = await freePort();
  api2 = startApi(port2, `tcp://127.0.0.1:${await freePort()}`);
  await waitHealthy(`http://127.0.0.1:${port2}`, 0, api2);
  const both = Date.now();
  await sleep(8000);
  const bothEnd = Date.now();
  const listed = await http<ScheduleView[]>('GET', `http://127.0.0.1:${port2}/functions/ticker/schedules`);
  expect(listed.body.map((s) => s.id).sort()).toEqual([skip.id, once.id].sort());
  for (const id of [skip.id, once.id]) expect((await http('DELETE', `${url}/functions/ticker/schedules/${id}`)).status).toBe(200);
  const end = Date.now();
  await sleep(2500); // a tick in flight at the delete lands now; none after it
  await api2.stop();
  api2 = undefined;

  const calls = (await http<ScheduledCall[]>('GET', `${url}/calls?format=list&funcName=ticker&limit=1000`)).body;
  const ticksOf = (id: string): number[] =>
    calls
      .filter((c) => c.schedule?.id === id)
      .map((c) => Date.parse(c.schedule!.tick))
      .sort((a, b) => a - b);
  const report = (id: string): string =>
    ticksOf(id)
      .map((t) => new Date(t).toISOString().slice(11, 19))
      .join(' ');

  for (const s of [skip, once]) {
    const ticks = ticksOf(s.id);
    // No tick twice, whatever the restart and the second API did.
    expect(new Set(ticks).size, report(s.id)).toBe(ticks.length);
    const within = (a: number, b: number): number => ticks.filter((t) => t > a && t <= b).length;
    // None lost while an API was up, but for one at each edge.
    expect(within(up1, killedAt), report(s.id)).toBeGreaterThanOrEqual(ticksIn(up1, killedAt) - 1);
    expect(within(up2, both), report(s.id)).toBeGreaterThanOrEqual(ticksIn(up2, both) - 1);
    expect(within(both, bothEnd), report(s.id)).toBeGreaterThanOrEqual(ticksIn(both, bothEnd) - 1);
    expect(
      ticks.filter((t) => t > end + 1000),
      report(s.id),
    ).toEqual([]);
  }
  // While the API was down: skip fires none of those ticks; once fires one, the latest.
  const downS = ticksOf(skip.id).filter((t) => t > killedAt + 1000 && t < restartedAt);
  expect(downS, report(skip.id)).toEqual([]);
  // (The restarted API reads its schedules a moment after it was spawned: the missed tick is the latest
  // before that moment, and both schedules' timers fire the same ticks from then on.)
  const since = (id: string): number => ticksOf(id).filter((t) => t > killedAt + 1000 && t <= up2).length;
  expect(since(once.id), `${report(once.id)} / ${report(skip.id)}`).toBe(since(skip.id) + 1);

  // The call records say which schedule and tick; the scheduled calls run.
  const last = calls.find((c) => c.schedule?.id === skip.id)!;
  const c = await waitCall(url, last.callNum);
  expect(c.status).toBe('DONE');
  expect(JSON.parse(c.result)).toEqual({ tick: 'skip' });
  const shown = (await http<ScheduledCall>('GET', `${url}/call/${last.callNum}`)).body;
  expect(shown.schedule).toEqual(last.schedule);
}, 120_000);

it('lists a schedule with its next and last run, and survives a restart of the API', async () => {
  const r = await http<ScheduleView>('POST', `${url}/functions/ticker/schedules`, { cron: '*/2 * * * * *' });
  expect(r.status).toBe(201);
  expect(r.body).toMatchObject({ timezone: 'UTC', missed: 'skip' });
  await sleep(4500);
  const [s] = (await http<ScheduleView[]>('GET', `${url}/functions/ticker/schedules`)).body;
  expect(s?.id).toBe(r.body.id);
  expect(Date.parse(s!.next!)).toBeGreaterThan(Date.now() - 1000);
  expect(s?.lastRun?.callNum).toBeGreaterThan(0);
  expect(await api.stop()).toBe(0);
  api = startApi(port, brokerAddr);
  await waitHealthy(url, 0, api);
  expect((await http<ScheduleView[]>('GET', `${url}/functions/ticker/schedules`)).body.map((x) => x.id)).toEqual([r.body.id]);
  expect((await http('DELETE', `${url}/functions/ticker/schedules/${r.body.id}`)).status).toBe(200);
});

it("a function's schedules go when it is deleted", async () => {
  expect((await http('POST', `${url}/functions/ticker/schedules`, { cron: '0 0 1 1 *' })).status).toBe(201);
  expect((await http('DELETE', `${url}/functions/ticker`)).status).toBe(200);
  expect((await http('GET', `${url}/functions/ticker/schedules`)).status).toBe(404);
});
