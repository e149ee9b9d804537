// The built-in java runtime end to end, against `zfaas up` and the zfaas/java image: a zfaas-style
// function (handleRequest(input) returning any value) and a Lambda-style one (AWS's RequestHandler, which
// compiles without AWS's jar) deployed as sources and compiled by the loader in the container; a web call
// in the Lambda convention; a Cloud Functions HttpFunction (without Google's jar) answering web calls; the same function warm, then under policy none (run once); and sources that do
// not compile, whose calls end ERROR with the compiler's words.
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { CLI, http, startUp, tempDir, upload, waitCall, type Platform } from './helpers/platform.js';

let p: Platform;

const HELLO = `package demo;

import java.util.Map;

public class Hello {
  public Map<String, Object> handleRequest(Map<String, Object> params) {
    System.out.println("hello was called");
    Object name = params.getOrDefault("name", "world");
    return Map.of("greeting", "hello " + name, "jvm", ProcessHandle.current().pid(), "call", String.valueOf(System.getenv("ZFAAS_CALL")));
  }
}
`;

const LAMBDA = `import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.Map;

public class Api implements RequestHandler<Map<String, Object>, Map<String, Object>> {
  @Override
  @SuppressWarnings("unchecked")
  public Map<String, Object> handleRequest(Map<String, Object> event, Context context) {
    Map<String, Object> q = (Map<String, Object>) event.getOrDefault("queryStringParameters", Map.of());
    String body = "hi " + q.getOrDefault("who", "nobody") + " from " + context.getFunctionName() + " at " + event.get("rawPath");
    return Map.of("statusCode", 202, "headers", Map.of("content-type", "text/plain"), "body", body);
  }
}
`;

const HTTP = `import com.google.cloud.functions.HttpFunction;
import com.google.cloud.functions.HttpRequest;
import com.google.cloud.functions.HttpResponse;
import java.io.BufferedWriter;

public class Echo implements HttpFunction {
  @Override
  public void service(HttpRequest request, HttpResponse response) throws Exception {
    String body = new String(request.getInputStream().readAllBytes(), "UTF-8");
    if (request.getPath().equals("/missing")) {
      response.setStatusCode(404);
      return;
    }
    response.setStatusCode(201);
    response.setContentType("text/plain");
    response.appendHeader("X-Method", request.getMethod());
    BufferedWriter w = response.getWriter();
    w.write(request.getMethod() + " " + request.getPath() + " name=" + request.getFirstQueryParameter("name").orElse("-")
        + " token=" + request.getFirstHeader("X-Token").orElse("-") + " body=" + body);
  }
}
`;

beforeAll(async () => {
  p = await startUp(['--miniworkers', '2', '--policy', 'function']);
}, 900_000); // the first start may build the runtime images
afterAll(async () => {
  await p?.proc.stop();
  if (p) await rm(p.data, { recursive: true, force: true });
});

// An asynchronous call, waited for: its record.
async function invoke(funcName: string, params: unknown): Promise<{ status: string; result: string; logs?: string; error?: string }> {
  const r = await http<{ callNum: number }>('POST', `${p.api}/invokeFunction`, { funcName, params });
  expect(r.status).toBe(202);
  return (await waitCall(p.api, r.body.callNum)) as never;
}

const deploy = async (name: string, files: Record<string, string>, fields: Record<string, string> = {}) =>
  upload(`${p.api}/registerFunction/java/${name}`, await packFiles(files), `${name}.tar.gz`, fields);

describe('the java runtime', () => {
  it('compiles and runs a function that returns a value, warm from its second call, with the call in its env and its output in its logs', async () => {
    expect((await deploy('jhello', { 'demo/Hello.java': HELLO })).status).toBe(201);
    const first = await invoke('jhello', { name: 'ana' });
    expect(first.status).toBe('DONE');
    const a = JSON.parse(first.result) as { greeting: string; jvm: number; call: string };
    expect(a.greeting).toBe('hello ana');
    expect(first.logs).toContain('hello was called');
    const second = await invoke('jhello', {});
    const b = JSON.parse(second.result) as { greeting: string; jvm: number; call: string };
    expect(b.greeting).toBe('hello world');
    expect(b.jvm).toBe(a.jvm); // the same JVM: warm
    expect(b.call).not.toBe(a.call); // each call its own ZFAAS_CALL
  });

  it('answers a web call through a Lambda RequestHandler, in API Gateway form', async () => {
    expect((await deploy('japi', { 'Api.java': LAMBDA })).status).toBe(201);
    const r = await fetch(`${p.api}/function/japi/orders?who=bo`);
    expect(r.status).toBe(202);
    expect(r.headers.get('content-type')).toBe('text/plain');
    expect(await r.text()).toBe('hi bo from japi at /orders');
  });

  it('answers web calls through a Cloud Functions HttpFunction: method, path, query, headers and body in; status, headers and body out', async () => {
    expect((await deploy('jhttp', { 'Echo.java': HTTP })).status).toBe(201);
    const r = await fetch(`${p.api}/function/jhttp/items/7?name=ana`, { method: 'PUT', headers: { 'x-token': 't1' }, body: 'abc' });
    expect(r.status).toBe(201);
    expect(r.headers.get('content-type')).toBe('text/plain');
    expect(r.headers.get('x-method')).toBe('PUT');
    expect(await r.text()).toBe('PUT /items/7 name=ana token=t1 body=abc');
    expect((await fetch(`${p.api}/function/jhttp/missing`)).status).toBe(404);
    // Called with params (no web request), it gets them POSTed as JSON and its body is the result.
    const direct = await invoke('jhttp', { n: 1 });
    expect(direct.status, direct.error).toBe('DONE');
    expect(JSON.parse(direct.result)).toBe('POST / name=- token=- body={"n":1}');
  });

  it('runs the function once per call under policy none', async () => {
    expect((await deploy('jonce', { 'demo/Hello.java': HELLO }, { policy: 'none', handler: 'demo/Hello.handleRequest' })).status).toBe(201);
    const r = await invoke('jonce', { name: 'cy' });
    expect(r.status).toBe('DONE');
    expect(JSON.parse(r.result)).toMatchObject({ greeting: 'hello cy' });
  });

  it('scaffolds with `zfaas init --runtime java`, deploys and invokes it with the CLI as written', async () => {
    const dir = await tempDir('zfaas-java-init-');
    const env = { ...process.env, ZFAAS_API: p.api, ZFAAS_CONFIG: '/nonexistent/zfaas.json' };
    const cli = (...args: string[]) => promisify(execFile)(process.execPath, [CLI, ...args], { env });
    try {
      await cli('init', 'jinit', '--runtime', 'java', '--dir', join(dir, 'jinit'));
      await cli('deploy', 'jinit', join(dir, 'jinit'), '--runtime', 'java');
      const out = await cli('invoke', 'jinit', 'name=ana');
      expect(JSON.parse(out.stdout)).toEqual({ hello: 'ana' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("ends the calls of sources that do not compile in ERROR, with the compiler's words", async () => {
    expect(
      (await deploy('jbroken', { 'Broken.java': 'public class Broken { public int handleRequest(Object o) { return nope; } }' })).status,
    ).toBe(201);
    const r = await invoke('jbroken', {});
    expect(r.status).toBe('ERROR');
    expect(r.error).toMatch(/do not compile[\s\S]*cannot find symbol/);
  });
});
