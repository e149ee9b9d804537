// Broker triggers measured on this machine (npm run bench:triggers): `zfaas up` with a warm node function,
// then, in the same run, direct calls (POST /function/NAME, CLIENTS at once) and, per broker (real
// nats-server, mosquitto, rabbitmq-server, redis-server on loopback), a burst of MESSAGES published at once
// and drained through a trigger: messages per second, the lag at the broker while it drains (as the trigger
// reports it, every 250 ms), and
// the CPU per message of the zfaas process (API, DB service and node in one) and of the broker.
// BENCH_MESSAGES (default 10000), BENCH_IN_FLIGHT (default 32), BENCH_KINDS (default all four).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packFiles } from '../test/helpers/archives.js';
import { missingBroker, startBroker, type BrokerKind } from '../test/helpers/brokers.js';
import { prepareSource, publish } from '../test/helpers/publish.js';
import { http, ROOT, startUp, upload, waitFor } from '../test/helpers/platform.js';
import { cpuMs, cpuOf, pidsNamed } from './proc.js';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 10_000);
const IN_FLIGHT = Number(process.env.BENCH_IN_FLIGHT ?? 32);
const CLIENTS = 32;
const KINDS = (process.env.BENCH_KINDS?.split(',') ?? ['redis', 'nats', 'amqp', 'mqtt']) as BrokerKind[];
const BROKER_BIN: Record<BrokerKind, RegExp> = {
  nats: /nats-server$/,
  mqtt: /mosquitto$/,
  amqp: /beam\.smp$/,
  redis: /redis-server/,
};

interface TriggerView {
  id: string;
  stats?: { delivered: number; failed: number; inFlight: number; lag?: number };
}

async function main(): Promise<void> {
  const p = await startUp(['--miniworkers', '4'], {
    ZFAAS_TRIGGER_SYNC_MS: '250',
    ZFAAS_TRIGGER_LEASE_MS: '2000',
    ZFAAS_LOG_LEVEL: 'warn',
  });
  const rows: Record<string, string | number>[] = [];
  try {
    let runtime = 'node';
    if (process.env.ZFAAS_TEST_NODE_IMAGE) {
      const def = JSON.parse(await readFile(join(ROOT, 'runtimes', 'node', 'runtime.json'), 'utf8')) as Record<string, unknown>;
      runtime = 'node-under-test';
      await http('POST', `${p.api}/registerRuntime`, { ...def, name: runtime, image: process.env.ZFAAS_TEST_NODE_IMAGE });
    }
    const arc = await packFiles({ 'index.js': 'module.exports = (p) => ({ n: p && p.body ? p.body.n : p.n });' });
    await upload(`${p.api}/registerFunction/${runtime}/warm`, arc, 'warm.tar.gz');
    const zfaasPid = p.proc.child.pid!;

    // Direct calls, the yardstick: CLIENTS callers at once, MESSAGES calls (at most 5000).
    const direct = Math.min(MESSAGES, 5000);
    for (let i = 0; i < 50; i++)
      await fetch(`${p.api}/function/warm`, { method: 'POST', body: '{"n":0}', headers: { 'content-type': 'application/json' } });
    const cpu0 = await cpuMs(zfaasPid);
    const t0 = Date.now();
    let next = 0;
    await Promise.all(
      [...Array(CLIENTS).keys()].map(async () => {
        while (next < direct) {
          const n = next++;
          const r = await fetch(`${p.api}/function/warm`, {
            method: 'POST',
            body: JSON.stringify({ n }),
            headers: { 'content-type': 'application/json' },
          });
          await r.arrayBuffer();
        }
      }),
    );
    const secs = (Date.now() - t0) / 1000;
    rows.push({
      path: `direct POST /function/warm (${CLIENTS} clients)`,
      messages: direct,
      'msg/s': Math.round(direct / secs),
      'drain s': secs.toFixed(1),
      'max lag': '-',
      'zfaas CPU ms/msg': ((await cpuMs(zfaasPid)) - cpu0) / direct,
      'broker CPU ms/msg': '-',
    });

    for (const kind of KINDS) {
      if (missingBroker(kind)) {
        console.log(`${kind}: ${missingBroker(kind)}; skipped`);
        continue;
      }
      const broker = await startBroker(kind);
      try {
        const source = kind === 'nats' ? 'bench.in' : kind === 'mqtt' ? 'bench/in' : 'bench';
        await prepareSource(kind, broker.url, source);
        const made = await http<TriggerView>('POST', `${p.api}/functions/warm/triggers`, {
          type: kind,
          url: broker.url,
          source,
          inFlight: IN_FLIGHT,
        });
        const id = made.body.id;
        await waitFor('trigger connected', async () => {
          const t = await http<{ state: string }>('GET', `${p.api}/functions/warm/triggers/${id}`);
          return t.body.state === 'connected' ? true : undefined;
        });
        const brokerPids = await pidsNamed(BROKER_BIN[kind]);
        const before = { zfaas: await cpuMs(zfaasPid), broker: await cpuOf(brokerPids) };
        const start = Date.now();
        // The burst: all published as fast as the publisher goes (the drain starts meanwhile).
        const msgs = [...Array(MESSAGES).keys()].map((n) => ({ id: `b${n}`, body: JSON.stringify({ n }) }));
        await publish(kind, broker.url, source, msgs);
        // Drained: every message's call done and acknowledged (the trigger's own counts and lag, which its
        // consumer reports at each sync; reading the broker here would load it).
        let maxLag = 0;
        await waitFor(
          `${kind}: ${MESSAGES} messages drained`,
          async () => {
            const t = (await http<TriggerView>('GET', `${p.api}/functions/warm/triggers/${id}`)).body.stats;
            if (t?.lag !== undefined) maxLag = Math.max(maxLag, t.lag);
            return t && t.delivered >= MESSAGES && t.inFlight === 0 && !t.lag ? true : undefined;
          },
          30 * 60_000,
        );
        const secs = (Date.now() - start) / 1000;
        rows.push({
          path: `${kind} trigger (inFlight ${kind === 'mqtt' ? 1 : IN_FLIGHT})`,
          messages: MESSAGES,
          'msg/s': Math.round(MESSAGES / secs),
          'drain s': secs.toFixed(1),
          'max lag': kind === 'mqtt' ? 'n/a' : maxLag,
          'zfaas CPU ms/msg': ((await cpuMs(zfaasPid)) - before.zfaas) / MESSAGES,
          'broker CPU ms/msg': ((await cpuOf(brokerPids)) - before.broker) / MESSAGES,
        });
        await http('DELETE', `${p.api}/functions/warm/triggers/${id}`);
      } finally {
        await broker.dispose();
      }
    }
  } finally {
    await p.stop();
  }
  for (const r of rows)
    for (const k of ['zfaas CPU ms/msg', 'broker CPU ms/msg']) if (typeof r[k] === 'number') r[k] = (r[k] as number).toFixed(2);
  console.table(rows);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
