// Broker triggers against the real brokers (nats-server with JetStream, mosquitto, rabbitmq-server,
// redis-server from Debian, started here on loopback ports) and real zfaas services as separate processes
// (db, api, instance). Per broker: messages published, with duplicates (the same message-id twice where the
// publisher names messages), poison messages that always fail, and one longer than the trigger's limit;
// the API killed (SIGKILL) mid-stream and started again, so that messages in flight are delivered again by
// the broker; then the broker itself restarted and more messages published; then the network between the
// API and the broker cut (a relay that resets the connections and refuses new ones) while more come. Each message is checked one by
// one: exactly one call, DONE with its own number, a poison message one call listed as a dead letter with
// its source, the long one no call and listed in the trigger's stats, and nothing left unacknowledged at
// the broker at the end.
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { missingBroker, startBroker, type BrokerKind, type RunningBroker } from './helpers/brokers.js';
import { cutProxy, type CutProxy } from './helpers/cut-proxy.js';
import { amqpDeadLettered, leftAtBroker, prepareSource, publish, type Outgoing } from './helpers/publish.js';
import {
  freePort,
  http,
  instanceProc,
  labelledContainers,
  ROOT,
  tempDir,
  upload,
  waitFor,
  waitHealthy,
  zfaas,
  type Proc,
} from './helpers/platform.js';

interface TriggerView {
  id: string;
  state: string;
  settings: { group?: string };
  stats?: { delivered: number; failed: number; inFlight: number; rejected: { id: string; bytes: number; subject: string }[] };
}
interface CallRecord {
  callNum: number;
  status: string;
  result: string;
  deadLetter?: string;
  params: { body: { n: number; poison?: boolean }; trigger: { id: string; type: string; source: string; messageId: string } };
}

let data: string;
let db: Proc;
let api: Proc;
let inst: Proc;
let api2: Proc | undefined;
let url: string;
let dbAddr: string;
let brokerAddr: string;
let port: number;

const API_ENV = { ZFAAS_TRIGGER_LEASE_MS: '2000', ZFAAS_TRIGGER_SYNC_MS: '300' };
const NODE = 'trig-node';
const startInstance = (): Proc => instanceProc({ broker: brokerAddr, db: dbAddr, data, id: NODE, miniworkers: 4, policy: 'none' });
const startApi = (): Proc => zfaas(['api', '--port', String(port), '--db', dbAddr, '--broker-bind', brokerAddr], API_ENV);

// Each message's number comes back; a poison message always fails (retries=1: then a dead letter).
const CONSUMER = `module.exports = async (p) => {
  const b = p.body || {};
  if (b.poison) throw new Error('poison message ' + b.n);
  await new Promise((r) => setTimeout(r, 30));
  return { n: b.n, messageId: p.trigger.messageId, type: p.trigger.type };
};`;

beforeAll(async () => {
  data = await tempDir();
  port = await freePort();
  dbAddr = `tcp://127.0.0.1:${await freePort()}`;
  brokerAddr = `tcp://127.0.0.1:${await freePort()}`;
  url = `http://127.0.0.1:${port}`;
  db = zfaas(['db', '--bind', dbAddr, '--data', join(data, 'db')]);
  api = startApi();
  inst = startInstance();
  await waitHealthy(url, 1, api);
  // ZFAAS_TEST_NODE_IMAGE: run the functions on that image instead of the built-in one (a checkout whose
  // loader differs from the images this machine holds builds its own and names it here).
  if (process.env.ZFAAS_TEST_NODE_IMAGE) {
    const def = JSON.parse(await readFile(join(ROOT, 'runtimes', 'node', 'runtime.json'), 'utf8')) as Record<string, unknown>;
    const r = await http('POST', `${url}/registerRuntime`, { ...def, name: RUNTIME, image: process.env.ZFAAS_TEST_NODE_IMAGE });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }
}, 120_000);

afterAll(async () => {
  // The node first, while the API and the DB service answer it (it records what it ran, removes its containers).
  await inst?.stop();
  await Promise.all([api2?.stop(), api?.stop(), db?.stop()]);
  expect(await labelledContainers({ 'zfaas.node': NODE })).toEqual([]);
  await rm(data, { recursive: true, force: true });
});

const RUNTIME = process.env.ZFAAS_TEST_NODE_IMAGE ? 'node-under-test' : 'node';

const deploy = async (name: string): Promise<void> => {
  const arc = await packFiles({ 'index.js': CONSUMER });
  const r = await upload(`${url}/registerFunction/${RUNTIME}/${name}`, arc, `${name}.tar.gz`, { retries: '1', retryBackoff: '100ms' });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
};

const callsOf = async (fn: string): Promise<CallRecord[]> =>
  (await http<CallRecord[]>('GET', `${url}/calls?funcName=${fn}&limit=10000&format=list`)).body;

const triggerOf = async (fn: string, id: string): Promise<TriggerView> =>
  (await http<TriggerView>('GET', `${url}/functions/${fn}/triggers/${id}`)).body;

it('refuses a trigger it cannot consume, saying what it expected', async () => {
  await deploy('plain');
  const post = (body: unknown) => http<{ error: string }>('POST', `${url}/functions/plain/triggers`, body);
  const kafka = await post({ type: 'kafka', url: 'kafka://127.0.0.1:9092', source: 't' });
  expect(kafka.status).toBe(400);
  expect(kafka.body.error).toMatch(/type: must be one of nats, mqtt, amqp, redis/);
  const scheme = await post({ type: 'redis', url: 'amqp://127.0.0.1:1', source: 's' });
  expect(scheme.status).toBe(400);
  expect(scheme.body.error).toMatch(/redis trigger takes redis: or rediss: URLs/);
  const clear = await post({ type: 'amqp', url: 'amqp://bob:hunter2@127.0.0.1:5672', source: 'q' });
  expect(clear.status).toBe(400);
  expect(clear.body.error).toMatch(/holds a password; store it as a secret/);
  const noSecret = await post({ type: 'amqp', url: 'amqp://127.0.0.1:5672', source: 'q', auth: { username: 'bob', secret: 'nope' } });
  expect(noSecret.status).toBe(400);
  expect(noSecret.body.error).toMatch(/has no secret nope/);
  const far = await post({ type: 'redis', url: 'redis://10.1.2.3:6379', source: 's' });
  expect(far.status).toBe(400);
  expect(far.body.error).toMatch(/not in this API's trigger allow-list/);
  const dlq = await post({ type: 'redis', url: 'redis://127.0.0.1:1', source: 's', deadLetter: 'broker' });
  expect(dlq.status).toBe(400);
  expect((await http('POST', `${url}/functions/nope/triggers`, { type: 'redis', url: 'redis://127.0.0.1:1', source: 's' })).status).toBe(
    404,
  );
  expect((await http('DELETE', `${url}/functions/plain/triggers/00aa`)).status).toBe(404);
  expect((await http('GET', `${url}/functions/plain/triggers`)).body).toEqual([]);
});

const KINDS: BrokerKind[] = ['redis', 'nats', 'amqp', 'mqtt'];

describe.each(KINDS)('%s trigger', (kind) => {
  const missing = missingBroker(kind);
  let broker: RunningBroker;
  let link: CutProxy; // the trigger's way to its broker, which the test cuts
  const fn = `on-${kind}`;
  const source = kind === 'nats' ? 'orders.new' : kind === 'mqtt' ? 'orders/+/new' : 'orders';
  const topic = kind === 'mqtt' ? 'orders/eu/new' : source; // where the publisher sends
  let trigger: TriggerView;
  const N = 40;
  const named = kind === 'amqp' || kind === 'mqtt'; // the publisher names messages: duplicates are the same name again
  const msg = (n: number, extra: object = {}): Outgoing => ({ id: `${kind}-${n}`, body: JSON.stringify({ n, ...extra }) });

  beforeAll(async () => {
    if (missing) return;
    broker = await startBroker(kind);
    link = await cutProxy(broker.port);
    await prepareSource(kind, broker.url, source);
    await deploy(fn);
  }, 120_000);
  afterAll(async () => {
    await link?.close();
    await broker?.dispose();
  });

  it.skipIf(missing)(
    'makes one call per message through an API killed mid-stream and a broker restart, none left unacknowledged',
    async () => {
      const made = await http<TriggerView>('POST', `${url}/functions/${fn}/triggers`, {
        type: kind,
        url: broker.url,
        source,
        inFlight: 4,
        maxBytes: 4096,
      });
      expect(made.status, JSON.stringify(made.body)).toBe(201);
      trigger = made.body;
      expect(trigger.id).toMatch(/^[a-f0-9]+$/);
      // A persistent MQTT session exists once the trigger subscribed; before that, the broker keeps nothing.
      await waitFor(
        'trigger connected',
        async () => ((await triggerOf(fn, trigger.id)).state === 'connected' ? true : undefined),
        60_000,
        api,
      );

      const first: Outgoing[] = [];
      for (let n = 0; n < N; n++) first.push(msg(n));
      first.splice(10, 0, msg(1000, { poison: true }));
      first.splice(20, 0, { id: `${kind}-big`, body: JSON.stringify({ n: 2000, pad: 'x'.repeat(5000) }) });
      if (named) first.push(msg(3), msg(7)); // published twice: the same message
      await publish(kind, broker.url, topic, first);

      // Mid-stream: some calls made, not all; the API dies without a word and comes back.
      await waitFor('calls under way', async () => ((await callsOf(fn)).length >= 6 ? true : undefined), 90_000, api);
      api.child.kill('SIGKILL');
      await api.stop();
      api = startApi();
      await waitHealthy(url, 1, api);

      // The broker restarts while calls go on; then more messages come.
      await waitFor('more calls', async () => ((await callsOf(fn)).length >= 15 ? true : undefined), 90_000, api);
      await broker.stop();
      await broker.start();
      const second: Outgoing[] = [];
      for (let n = N; n < N + 10; n++) second.push(msg(n));
      second.push(msg(1001, { poison: true }));
      await publish(kind, broker.url, topic, second);

      const numbers = [...Array(N + 10).keys()];
      const expectedCalls = numbers.length + 2; // and the two poison messages; the long one makes none
      const all = await waitFor(
        'every message called to its end',
        async () => {
          const calls = await callsOf(fn);
          const ended = calls.filter((c) => ['DONE', 'ERROR', 'TIMEOUT'].includes(c.status));
          return ended.length >= expectedCalls && calls.length === ended.length ? calls : undefined;
        },
        180_000,
        api,
      );
      // One by one: each message exactly one call, with its own number back.
      for (const n of numbers) {
        const mine = all.filter((c) => c.params.body.n === n);
        expect(mine.length, `message ${n}`).toBe(1);
        expect(mine[0]!.status, `message ${n}: ${mine[0]!.result}`).toBe('DONE');
        expect(JSON.parse(mine[0]!.result)).toMatchObject({ n, type: kind });
        expect(mine[0]!.params.trigger).toMatchObject({ id: trigger.id, type: kind, source });
      }
      for (const n of [1000, 1001]) {
        const poison = all.filter((c) => c.params.body.n === n);
        expect(poison.length, `poison ${n}`).toBe(1);
        expect(poison[0]!.status).toBe('ERROR');
        expect(poison[0]!.deadLetter).toBe('listed');
      }
      expect(all.filter((c) => c.params.body.n === 2000)).toEqual([]);
      expect(all.length).toBe(expectedCalls);
      const dead = (await http<CallRecord[]>('GET', `${url}/dead-letters?funcName=${fn}`)).body;
      expect(dead.map((c) => c.params.body.n).sort()).toEqual([1000, 1001]);
      expect(dead[0]!.params.trigger).toMatchObject({ id: trigger.id, type: kind, source });

      // Acknowledged, every one: the broker holds none for the trigger, and the trigger has none in flight.
      const group = trigger.settings.group ?? `zfaas-${trigger.id}`;
      await waitFor(
        'nothing left at the broker',
        async () => {
          const t = await triggerOf(fn, trigger.id);
          const left = await leftAtBroker(kind, broker.url, source, group);
          return t.stats && t.stats.inFlight === 0 && (left === undefined || left === 0) ? t : undefined;
        },
        60_000,
        api,
      );
      const t = await waitFor(
        'the long message listed',
        async () => {
          const v = await triggerOf(fn, trigger.id);
          return v.stats?.rejected.some((r) => r.bytes > 4096) ? v : undefined;
        },
        30_000,
      );
      expect(t.stats!.rejected[0]).toMatchObject({ subject: kind === 'mqtt' ? topic : source });
      // Counted by the consuming API and saved with its lease: the API killed lost its last moments' counts.
      expect(t.stats!.delivered).toBeGreaterThan(0);
      expect(t.stats!.failed).toBeGreaterThan(0);

      // Paused: messages wait at the broker; resumed: they are called.
      expect((await http<TriggerView>('POST', `${url}/functions/${fn}/triggers/${trigger.id}/pause`)).body.state).toBe('paused');
      await publish(kind, broker.url, topic, [msg(5000)]);
      await new Promise((r) => setTimeout(r, 1500));
      expect((await callsOf(fn)).some((c) => c.params.body.n === 5000)).toBe(false);
      expect((await http('POST', `${url}/functions/${fn}/triggers/${trigger.id}/resume`)).status).toBe(200);
      await waitFor(
        'the message held while paused',
        async () => ((await callsOf(fn)).some((c) => c.params.body.n === 5000) ? true : undefined),
        60_000,
      );

      expect((await http('DELETE', `${url}/functions/${fn}/triggers/${trigger.id}`)).body).toEqual({ deleted: true, id: trigger.id });
      expect((await http('GET', `${url}/functions/${fn}/triggers`)).body).toEqual([]);
    },
    420_000,
  );
});

// Two APIs on one DB: the trigger is consumed by one at a time (a lease in the DB service), the other takes
// it over when the first dies; meanwhile the node is killed while calls run. Each message still one call.
it.skipIf(missingBroker('redis'))(
  'is consumed by one API at a time, through a node killed mid-call and its API killed',
  async () => {
    const broker = await startBroker('redis');
    try {
      await deploy('shared');
      const made = await http<TriggerView>('POST', `${url}/functions/shared/triggers`, {
        type: 'redis',
        url: broker.url,
        source: 'jobs',
        inFlight: 6,
      });
      expect(made.status).toBe(201);
      const id = made.body.id;
      await waitFor('trigger connected', async () => ((await triggerOf('shared', id)).state === 'connected' ? true : undefined), 30_000);
      const holder1 = (await http<{ lease?: { holder: string } }>('GET', `${url}/functions/shared/triggers/${id}`)).body.lease?.holder;
      // A second API on the same DB, with its own port and broker (no node of its own).
      const port2 = await freePort();
      api2 = zfaas(['api', '--port', String(port2), '--db', dbAddr, '--broker-bind', `tcp://127.0.0.1:${await freePort()}`], API_ENV);
      await waitFor('second API', async () => ((await fetch(`http://127.0.0.1:${port2}/health`)).ok ? true : undefined), 30_000, api2);

      const pub = (from: number, to: number) =>
        publish(
          'redis',
          broker.url,
          'jobs',
          [...Array(to - from).keys()].map((i) => ({ id: String(from + i), body: JSON.stringify({ n: from + i }) })),
        );
      await pub(0, 30);
      await waitFor('calls under way', async () => ((await callsOf('shared')).length >= 5 ? true : undefined), 60_000);
      // The node dies with calls in its hands; a new life of it comes back.
      inst.child.kill('SIGKILL');
      await inst.stop();
      inst = startInstance();
      await waitHealthy(url, 1, api);
      await waitFor(
        'more calls',
        async () => ((await callsOf('shared')).filter((c) => c.status === 'DONE').length >= 15 ? true : undefined),
        90_000,
      );
      expect(api2.output()).not.toMatch(/trigger consumed/); // the first API holds it all along
      // The consuming API dies: the second takes the trigger over once the lease lapses.
      api.child.kill('SIGKILL');
      await api.stop();
      await waitFor('second API consuming', async () => (/trigger consumed/.test(api2!.output()) ? true : undefined), 30_000, api2);
      const holder2 = (await http<{ lease?: { holder: string } }>('GET', `http://127.0.0.1:${port2}/functions/shared/triggers/${id}`)).body
        .lease?.holder;
      expect(holder2).not.toBe(holder1);
      await pub(30, 40);
      // The nodes' API comes back: the calls the second API made run there (its recovery takes them).
      api = startApi();
      await waitHealthy(url, 1, api);
      const all = await waitFor(
        'every message called to its end',
        async () => {
          const calls = await callsOf('shared');
          return calls.length >= 40 && calls.every((c) => c.status === 'DONE') ? calls : undefined;
        },
        120_000,
        api,
      );
      for (let n = 0; n < 40; n++) expect(all.filter((c) => c.params.body.n === n).length, `message ${n}`).toBe(1);
      expect(all.length).toBe(40);
      expect(api.output()).not.toMatch(/trigger consumed/); // the second API still holds it
      await waitFor(
        'nothing left at the broker',
        async () => ((await leftAtBroker('redis', broker.url, 'jobs', `zfaas-${id}`)) === 0 ? true : undefined),
        60_000,
      );
    } finally {
      await api2?.stop();
      api2 = undefined;
      await broker.dispose();
    }
  },
  300_000,
);

// The broker's password comes from a secret of the namespace: the trigger keeps only the secret's name.
it.skipIf(missingBroker('redis'))(
  'connects with the password of a namespace secret, never stored in the trigger',
  async () => {
    const password = 'zfaas-redis-pw-0123456789';
    const broker = await startBroker('redis', { password });
    try {
      await deploy('guarded');
      expect((await http('PUT', `${url}/secrets/redis-pw`, { value: password })).status).toBeLessThan(300);
      const made = await http<TriggerView>('POST', `${url}/functions/guarded/triggers`, {
        type: 'redis',
        url: broker.url,
        source: 'guarded',
        auth: { secret: 'redis-pw' },
      });
      expect(made.status).toBe(201);
      await publish('redis', broker.url, 'guarded', [{ id: '1', body: '{"n":1}' }], password);
      const calls = await waitFor('the message called', async () => {
        const c = await callsOf('guarded');
        return c.length === 1 && c[0]!.status === 'DONE' ? c : undefined;
      });
      expect(calls[0]!.params.body.n).toBe(1);
      const shown = JSON.stringify((await http('GET', `${url}/functions/guarded/triggers`)).body);
      expect(shown).toContain('redis-pw');
      expect(shown).not.toContain(password);
    } finally {
      await broker.dispose();
    }
  },
  120_000,
);

// With deadLetter: broker, a message whose call failed goes to the queue's dead-letter exchange.
it.skipIf(missingBroker('amqp'))(
  "hands a failed AMQP message to the queue's dead-letter exchange when asked",
  async () => {
    const broker = await startBroker('amqp');
    try {
      await prepareSource('amqp', broker.url, 'payments');
      await deploy('payer');
      const made = await http<TriggerView>('POST', `${url}/functions/payer/triggers`, {
        type: 'amqp',
        url: broker.url,
        source: 'payments',
        deadLetter: 'broker',
      });
      expect(made.status).toBe(201);
      await publish('amqp', broker.url, 'payments', [
        { id: 'ok-1', body: '{"n":1}' },
        { id: 'bad-2', body: '{"n":2,"poison":true}' },
      ]);
      const dead = await waitFor('the poison message at the dead-letter queue', async () => {
        const d = await amqpDeadLettered(broker.url, 'payments');
        return d.length > 0 ? d : undefined;
      });
      expect(dead).toEqual(['bad-2']);
      const calls = await callsOf('payer');
      expect(calls.map((c) => [c.params.body.n, c.status]).sort()).toEqual([
        [1, 'DONE'],
        [2, 'ERROR'],
      ]);
      expect(await leftAtBroker('amqp', broker.url, 'payments', '')).toBe(0);
    } finally {
      await broker.dispose();
    }
  },
  120_000,
);
