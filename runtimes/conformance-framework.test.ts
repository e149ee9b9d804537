// Functions written for Google's Functions Framework, run by each loader on this machine over its stdin/stdout
// line (no Docker): the fixtures runtimes/fixtures/ff-* register their functions declaratively
// (functions.http / functions.cloudEvent, @functions_framework.http / .cloud_event) without vendoring the
// framework, and load under their registered names; HTTP functions answer web calls as the framework's
// request and response let them, CloudEvent functions take an event as a call's params (structured mode)
// or as a web request (binary mode with ce-* headers, or structured mode). The node loader also loads an ES
// module importing the framework, and the registrations of the real package when the archive vendors it.
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HttpResponseSchema, type HttpRequest, type HttpResponse } from '../protocol/loader.js';
import { nodeFramework } from '../test/helpers/vendored-framework.js';
import { spawnLoader, type Reply, type Speaker } from './conformance/speaker.js';

const HERE = resolve(import.meta.dirname);
// The fixtures run from a copy outside this repository: Node would find its node_modules (which holds the
// real package, a devDependency) from inside it, and the stand-in is what these functions must get.
let FIXTURES = '';
beforeAll(async () => {
  FIXTURES = await mkdtemp(join(tmpdir(), 'zfaas-ff-fixtures-'));
  for (const name of ['ff-node-http', 'ff-node-event', 'ff-node-esm', 'ff-node-vendored', 'ff-py-http', 'ff-py-event'])
    await cp(join(HERE, 'fixtures', name), join(FIXTURES, name), { recursive: true });
});
afterAll(async () => {
  if (FIXTURES) await rm(FIXTURES, { recursive: true, force: true });
});

interface Form {
  name: string;
  command: string[];
  http: string; // fixture of the HTTP sample
  event: string; // fixture of the CloudEvent samples
  httpHandler: string; // the HTTP sample's FILE.NAME
  summary: string; // the CloudEvent function answering what it got
  hello: string; // the CloudEvent function that logs and answers nothing
  nothing: { status: number; body: string }; // a web caller's answer when a CloudEvent function answers nothing
}

const FORMS: Form[] = [
  {
    name: 'node',
    command: [process.execPath, join(HERE, 'node/loader.js')],
    http: 'ff-node-http',
    event: 'ff-node-event',
    httpHandler: 'index.helloHttp',
    summary: 'index.eventSummary',
    hello: 'index.helloCloudEvent',
    nothing: { status: 204, body: '' },
  },
  {
    name: 'python',
    command: ['python3', join(HERE, 'python/loader.py')],
    http: 'ff-py-http',
    event: 'ff-py-event',
    httpHandler: 'main.hello_http',
    summary: 'main.event_summary',
    hello: 'main.hello_cloud_event',
    nothing: { status: 200, body: 'OK' },
  },
];

const started: Speaker[] = [];
afterEach(async () => {
  for (const s of started.splice(0)) await s.end();
});

async function load(f: Form, dir: string, handler: string | null, env: Record<string, string> = {}): Promise<{ s: Speaker; r: Reply }> {
  const s = spawnLoader(f.command, dir);
  started.push(s);
  expect((await s.next()).op).toBe('hello');
  const r = await s.ask({ op: 'load', dir, handler, env });
  return { s, r };
}

async function loaded(f: Form, fixture: string, handler: string | null): Promise<Speaker> {
  const { s, r } = await load(f, join(FIXTURES, fixture), handler);
  expect(r, s.stderr).toEqual({ op: 'loaded', ok: true, format: 'gcf' });
  return s;
}

const web = (method: string, path: string, query = '', headers: Record<string, string> = {}, body = ''): HttpRequest => ({
  method,
  path,
  query,
  headers: { host: 'fn.example.test', ...headers },
  body: Buffer.from(body).toString('base64'),
  sourceIp: '127.0.0.1',
});

let ids = 0;
async function webCall(s: Speaker, req: HttpRequest): Promise<{ reply: Reply; http: HttpResponse; text: string }> {
  const reply = await s.ask({ op: 'call', id: ++ids, params: {}, env: {}, http: req });
  expect(reply, s.stderr).toMatchObject({ op: 'result', ok: true });
  const http = HttpResponseSchema.parse(reply.op === 'result' && reply.http);
  return { reply, http, text: Buffer.from(http.body, 'base64').toString('utf8') };
}

async function directCall(s: Speaker, params: unknown): Promise<Reply> {
  return s.ask({ op: 'call', id: ++ids, params, env: {} });
}

const EVENT = { specversion: '1.0', id: 'e-1', source: '//example.test/src', type: 'com.example.test', subject: 'doc-7' };
const binary = (data: string, type = 'application/json'): HttpRequest =>
  web(
    'POST',
    '/',
    '',
    {
      'ce-specversion': '1.0',
      'ce-id': 'e-1',
      'ce-source': '//example.test/src',
      'ce-type': 'com.example.test',
      'ce-subject': 'doc-7',
      'content-type': type,
    },
    data,
  );

describe.each(FORMS)('the $name loader, with the Functions Framework not vendored', (f) => {
  it('loads an HTTP function registered under its name, alone in its file, with or without the name', async () => {
    for (const handler of [null, f.httpHandler]) {
      const s = await loaded(f, f.http, handler);
      const r = await webCall(s, web('GET', '/', 'name=ana'));
      expect(r.http.status).toBe(200);
      expect(r.http.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(r.text).toBe('Hello ana!');
    }
  });

  it('refuses a name nothing registered or exported, saying so', async () => {
    const file = f.httpHandler.split('.')[0]!;
    const { r } = await load(f, join(FIXTURES, f.http), `${file}.nobody`);
    expect(r).toMatchObject({ op: 'loaded', ok: false, error: expect.stringContaining('nobody') });
  });

  it("answers web calls as the framework's request and response let the function", async () => {
    const s = await loaded(f, f.http, f.httpHandler);
    const json = await webCall(s, web('POST', '/', '', { 'content-type': 'application/json' }, '{"name":"bo"}'));
    expect(json.text).toBe('Hello bo!');
    const status = await webCall(s, web('PUT', '/status', 'tag=a&tag=b'));
    expect(status.http.status).toBe(201);
    expect(status.http.headers['x-registered']).toBeTruthy();
    expect(status.http.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(status.text)).toEqual({ method: 'PUT', tags: ['a', 'b'] });
    const failed = await s.ask({ op: 'call', id: ++ids, params: {}, env: {}, http: web('GET', '/fail') });
    expect(failed).toMatchObject({ ok: false, error: expect.stringContaining('failed on purpose') });
    expect(failed).not.toHaveProperty('fault');
  });

  it('gives an HTTP function a call without a web request as a POST of its params', async () => {
    const s = await loaded(f, f.http, f.httpHandler);
    expect(await directCall(s, { name: 'cy' })).toMatchObject({ ok: true, result: 'Hello cy!' });
  });

  it('gives a CloudEvent function the params of a call as its event (structured mode)', async () => {
    const s = await loaded(f, f.event, f.summary);
    const r = await directCall(s, { ...EVENT, datacontenttype: 'application/json', data: { hello: 'world' } });
    expect(r, s.stderr).toMatchObject({ op: 'result', ok: true });
    expect(JSON.parse(r.op === 'result' ? (r.result ?? '') : '')).toEqual({ ...pick(EVENT), data: { hello: 'world' } });
    const b64 = await directCall(s, { ...EVENT, data_base64: Buffer.from([1, 2, 3]).toString('base64') });
    expect(JSON.parse(b64.op === 'result' ? (b64.result ?? '') : '')).toMatchObject({ data: { bytes: 3 } });
    const failed = await directCall(s, { ...EVENT, data: { fail: true } });
    expect(failed).toMatchObject({ ok: false, error: expect.stringContaining('failed on purpose') });
  });

  it('refuses params that are not a CloudEvent, saying what it expected', async () => {
    const s = await loaded(f, f.event, f.summary);
    const r = await directCall(s, { id: 'e-1', data: {} });
    expect(r).toMatchObject({ ok: false, error: expect.stringMatching(/CloudEvent.*specversion, source, type/) });
  });

  it('takes a CloudEvent as a web request, in binary mode and in structured mode', async () => {
    const s = await loaded(f, f.event, f.hello);
    const bin = await webCall(s, binary('{"hello":"binary"}'));
    expect(bin.http.status).toBe(f.nothing.status);
    expect(bin.text).toBe(f.nothing.body);
    expect(bin.reply.op === 'result' && bin.reply.logs).toMatch(
      /Event e-1 of type com\.example\.test from \/\/example\.test\/src[\s\S]*hello[\s\S]*binary/,
    );
    const structured = JSON.stringify({ ...EVENT, id: 'e-2', data: { hello: 'structured' } });
    const st = await webCall(s, web('POST', '/', '', { 'content-type': 'application/cloudevents+json' }, structured));
    expect(st.http.status).toBe(f.nothing.status);
    expect(st.reply.op === 'result' && st.reply.logs).toMatch(/Event e-2 of type[\s\S]*structured/);
  });

  it('answers 400 to a web request that carries no CloudEvent, and runs nothing', async () => {
    const s = await loaded(f, f.event, f.hello);
    const r = await webCall(s, web('POST', '/', '', { 'content-type': 'text/plain' }, 'just text'));
    expect(r.http.status).toBe(400);
    expect(r.text).toContain('expected a CloudEvent');
    expect(r.reply.op === 'result' && r.reply.logs).not.toContain('Event');
  });
});

const pick = (e: typeof EVENT): Record<string, string> => ({ id: e.id, type: e.type, source: e.source, subject: e.subject });

describe('the node loader and the Functions Framework', () => {
  const node = FORMS[0]!;

  it('answers web calls of a CloudEvent function with the value it returns, as JSON', async () => {
    const s = await loaded(node, node.event, node.summary);
    const r = await webCall(s, binary('{"hello":"binary"}'));
    expect(r.http.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ ...pick(EVENT), data: { hello: 'binary' } });
  });

  it('loads an ES module that imports the framework', async () => {
    const s = await loaded(node, 'ff-node-esm', null);
    const r = await webCall(s, web('GET', '/', 'name=esm'));
    expect(r.text).toBe('Hello esm from an ES module!');
  });

  describe('vendored in the archive', () => {
    let dir: string;
    beforeAll(async () => {
      // The archive as `npm install @google-cloud/functions-framework` leaves it: the package in node_modules.
      dir = await mkdtemp(join(tmpdir(), 'zfaas-ff-vendored-'));
      await cp(join(FIXTURES, 'ff-node-vendored'), dir, { recursive: true });
      await cp(nodeFramework(), join(dir, 'node_modules/@google-cloud/functions-framework'), { recursive: true });
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("finds the functions registered in the real package's registry", async () => {
      const { s, r } = await load(node, dir, 'index.helloHttp');
      expect(r, s.stderr).toEqual({ op: 'loaded', ok: true, format: 'gcf' });
      const hello = await webCall(s, web('GET', '/', 'name=real'));
      expect(hello.http.headers['x-framework']).toBe('vendored');
      expect(hello.text).toBe('Hello real!');
      const event = await load(node, dir, 'index.helloCloudEvent');
      const bin = await webCall(event.s, binary('{}'));
      expect(bin.http.status).toBe(204);
      expect(bin.reply.op === 'result' && bin.reply.logs).toContain('Event e-1 of type com.example.test');
    });

    it('finds the only function an ES module registered through it, with no name given', async () => {
      const esm = join(dir, 'esm');
      await cp(join(FIXTURES, 'ff-node-esm'), esm, { recursive: true }); // below the archive's node_modules
      const { s, r } = await load(node, esm, null);
      expect(r, s.stderr).toEqual({ op: 'loaded', ok: true, format: 'gcf' });
      expect((await webCall(s, web('GET', '/', 'name=real'))).text).toBe('Hello real from an ES module!');
    });

    it('finds the one named as the function is deployed when no handler names one', async () => {
      const { s, r } = await load(node, dir, null, { ZFAAS_FUNCTION: 'helloHttp' });
      expect(r, s.stderr).toEqual({ op: 'loaded', ok: true, format: 'gcf' });
      expect((await webCall(s, web('GET', '/'))).text).toBe('Hello World!');
    });
  });
});
