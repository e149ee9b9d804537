// Google Cloud Functions written the way Google's samples write them today, registered with the Functions
// Framework (functions.http / functions.cloudEvent, @functions_framework.http / .cloud_event), deployed
// unchanged through the API on the built-in node and python runtimes, with the framework not vendored and
// (node) vendored in the archive's node_modules: HTTP functions answer their web path; CloudEvent functions
// take an event as a call's params (structured mode) or as a web request (binary mode, ce-* headers).
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { ROOT, startUp, upload, type CallView, type Platform } from './helpers/platform.js';
import { nodeFramework } from './helpers/vendored-framework.js';

const TOKEN = 'ff-test-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };
let p: Platform;

async function files(dir: string, into: Record<string, string> = {}, base = dir): Promise<Record<string, string>> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) await files(path, into, base);
    else into[relative(base, path)] = await readFile(path, 'utf8');
  }
  return into;
}

const fixture = (name: string): Promise<Record<string, string>> => files(join(ROOT, 'runtimes', 'fixtures', name));

// The node fixture with the real package in its node_modules, as `npm install` leaves it there.
async function vendored(): Promise<Record<string, string>> {
  const real: Record<string, string> = {};
  for (const [name, text] of Object.entries(await files(nodeFramework())))
    real[`node_modules/@google-cloud/functions-framework/${name}`] = text;
  return { ...(await fixture('ff-node-vendored')), ...real };
}

async function deploy(name: string, runtime: string, archive: Record<string, string>, fields: Record<string, string> = {}): Promise<void> {
  const r = await upload(`${p.api}/registerFunction/${runtime}/${name}`, await packFiles(archive), `${name}.tar.gz`, fields, auth);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
}

async function call(path: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; text: string }> {
  const headers = new Headers(init.headers);
  headers.set('authorization', auth.authorization);
  const r = await fetch(`${p.api}${path}`, { ...init, headers });
  return { status: r.status, headers: r.headers, text: await r.text() };
}

async function invoke(funcName: string, params: unknown): Promise<CallView> {
  const r = await call('/invokeFunction', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ funcName, params, wait: true }),
  });
  expect(r.status, r.text).toBe(200);
  return JSON.parse(r.text) as CallView;
}

async function logsOf(r: { headers: Headers }): Promise<string> {
  const rec = JSON.parse((await call(`/call/${r.headers.get('x-zfaas-call')}`)).text) as CallView;
  return rec.logs ?? '';
}

const EVENT = { specversion: '1.0', id: 'e-1', source: '//storage.example.test/b', type: 'google.cloud.storage.object.v1.finalized' };
const ceHeaders = (id: string): Record<string, string> => ({
  'ce-specversion': '1.0',
  'ce-id': id,
  'ce-source': EVENT.source,
  'ce-type': EVENT.type,
  'content-type': 'application/json',
});

beforeAll(async () => {
  p = await startUp(['--miniworkers', '2'], { ZFAAS_TOKEN: TOKEN });
  // Deployed as Google's samples are: no format, and the handler naming the registered function where the
  // file registers more than one (as gcloud's --entry-point does).
  await deploy('hello-node', 'node', await fixture('ff-node-http'));
  await deploy('event-node', 'node', await fixture('ff-node-event'), { handler: 'index.eventSummary' });
  await deploy('log-node', 'node', await fixture('ff-node-event'), { handler: 'index.helloCloudEvent' });
  await deploy('real-node', 'node', await vendored(), { handler: 'index.helloHttp' });
  await deploy('real-event-node', 'node', await vendored(), { handler: 'index.helloCloudEvent' });
  await deploy('esm-node', 'node', await fixture('ff-node-esm'));
  await deploy('hello-py', 'python', await fixture('ff-py-http'));
  await deploy('event-py', 'python', await fixture('ff-py-event'), { handler: 'main.event_summary' });
  await deploy('log-py', 'python', await fixture('ff-py-event'), { handler: 'main.hello_cloud_event' });
});

afterAll(async () => {
  await p?.stop();
});

describe('HTTP functions registered with the Functions Framework answer their web path', () => {
  for (const name of ['hello-node', 'hello-py', 'real-node']) {
    it(`${name}: the query, a JSON body, and the response the function made`, async () => {
      const q = await call(`/function/${name}?name=ana`);
      expect(q.status, q.text).toBe(200);
      expect(q.text).toBe('Hello ana!');
      expect(q.headers.get('content-type')).toBe('text/html; charset=utf-8');
      const j = await call(`/function/${name}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"bo"}' });
      expect(j.text).toBe('Hello bo!');
    });
  }

  it('an ES module that imports the framework (Node 18 in the image) answers too', async () => {
    const r = await call('/function/esm-node?name=ana');
    expect(r.status, r.text).toBe(200);
    expect(r.text).toBe('Hello ana from an ES module!');
  });

  it('the vendored package is the one that registered (its function sets its own header)', async () => {
    expect((await call('/function/real-node')).headers.get('x-framework')).toBe('vendored');
  });

  for (const name of ['hello-node', 'hello-py']) {
    it(`${name}: a status and headers of its choosing, and an error it throws as a 500`, async () => {
      const s = await call(`/function/${name}/status?tag=a&tag=b`, { method: 'PUT' });
      expect(s.status).toBe(201);
      expect(s.headers.get('x-registered')).toBeTruthy();
      expect(JSON.parse(s.text)).toEqual({ method: 'PUT', tags: ['a', 'b'] });
      const f = await call(`/function/${name}/fail`);
      expect(f.status).toBe(500);
      expect(f.text).toContain('failed on purpose');
    });

    it(`${name}: invoked without the web path, it gets the params as a JSON POST`, async () => {
      const c = await invoke(name, { name: 'cy' });
      expect(c.status, c.error).toBe('DONE');
      expect(c.result).toBe('Hello cy!');
    });
  }
});

describe('CloudEvent functions registered with the Functions Framework', () => {
  for (const name of ['event-node', 'event-py']) {
    it(`${name}: invoked with a CloudEvent as its params (structured mode)`, async () => {
      const c = await invoke(name, { ...EVENT, subject: 'objects/a.txt', data: { bucket: 'b', name: 'a.txt' } });
      expect(c.status, c.error).toBe('DONE');
      expect(JSON.parse(c.result)).toEqual({
        id: 'e-1',
        type: EVENT.type,
        source: EVENT.source,
        subject: 'objects/a.txt',
        data: { bucket: 'b', name: 'a.txt' },
      });
    });

    it(`${name}: params that are not a CloudEvent end the call in ERROR, saying what was expected`, async () => {
      const c = await invoke(name, { hello: 'world' });
      expect(c.status).toBe('ERROR');
      expect(c.error).toMatch(/must be a CloudEvent/);
    });
  }

  const answers: [string, number, string][] = [
    ['log-node', 204, ''],
    ['log-py', 200, 'OK'],
    ['real-event-node', 204, ''],
  ];
  for (const [name, status, body] of answers) {
    it(`${name}: takes a web request in binary mode (ce-* headers) and answers as the framework does`, async () => {
      const r = await call(`/function/${name}`, { method: 'POST', headers: ceHeaders('bin-1'), body: '{"bucket":"b"}' });
      expect(r.status, r.text).toBe(status);
      expect(r.text).toBe(body);
      expect(await logsOf(r)).toContain(`Event bin-1 of type ${EVENT.type}`);
    });
  }

  for (const name of ['log-node', 'log-py']) {
    it(`${name}: takes a web request in structured mode, and answers 400 to one that carries no event`, async () => {
      const event = JSON.stringify({ ...EVENT, id: 'st-1', data: { bucket: 'b' } });
      const r = await call(`/function/${name}`, {
        method: 'POST',
        headers: { 'content-type': 'application/cloudevents+json' },
        body: event,
      });
      expect(r.status, r.text).toBeLessThan(300);
      expect(await logsOf(r)).toContain(`Event st-1 of type ${EVENT.type}`);
      const bad = await call(`/function/${name}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'no event' });
      expect(bad.status).toBe(400);
      expect(bad.text).toContain('expected a CloudEvent');
    });
  }
});
