// The built-in go runtime end to end, against `zfaas up` and the zfaas/go image: each function compiled
// once at deploy by the runtime's dependencies step, and run by the image's loader. A Lambda-style handler
// (ctx, typed event) -> (value, error) called with JSON, warm from its second call, its error failing the
// call with its message; an http.Handler in a named package answering web calls (method, path, query,
// headers and body in; status, headers and body out); a typed handler in the lambda format behind the web
// path; aws-lambda-go's lambdacontext in a call's context; the same function under policy none; a package that
// does not compile, refused at deploy with the compiler's line; a new function taking a waiting stem cell
// (the image's generic loader, which execs the function's binary on load); and `zfaas init --template go`.
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packFiles } from './helpers/archives.js';
import { CLI, http, labelledContainers, startUp, tempDir, upload, waitCall, waitFor, type Platform } from './helpers/platform.js';

let p: Platform;

const ORDERS = `package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

type Order struct {
	Item string \`json:"item"\`
	Qty  int    \`json:"qty"\`
}

type Receipt struct {
	Item     string \`json:"item"\`
	Total    int    \`json:"total"\`
	Pid      int    \`json:"pid"\`
	Call     string \`json:"call"\`
	Deadline bool   \`json:"deadline"\`
}

func Handler(ctx context.Context, o Order) (Receipt, error) {
	if o.Qty < 0 {
		return Receipt{}, errors.New("qty must not be negative")
	}
	fmt.Println("ordering", o.Qty, o.Item)
	d, ok := ctx.Deadline()
	return Receipt{Item: o.Item, Total: 3 * o.Qty, Pid: os.Getpid(), Call: os.Getenv("ZFAAS_CALL"), Deadline: ok && time.Until(d) > 0}, nil
}
`;

const WEB = `package api

import (
	"fmt"
	"io"
	"net/http"
)

func Serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-Method", r.Method)
	w.WriteHeader(http.StatusCreated)
	fmt.Fprintf(w, "%s %s name=%s token=%s body=%s", r.Method, r.URL.Path, r.URL.Query().Get("name"), r.Header.Get("X-Token"), body)
}
`;

// The node keeps stem cells (policy runtime); the functions without a policy of their own take them.
// A function vendoring aws-lambda-go's lambdacontext (a stand-in with its names: the test has no registry).
const WITH_CONTEXT: Record<string, string> = {
  'go.mod': 'module example.com/withctx\n\ngo 1.19\n\nrequire github.com/aws/aws-lambda-go v1.41.0\n',
  'vendor/modules.txt': '# github.com/aws/aws-lambda-go v1.41.0\n## explicit; go 1.18\ngithub.com/aws/aws-lambda-go/lambdacontext\n',
  'vendor/github.com/aws/aws-lambda-go/lambdacontext/context.go': `package lambdacontext

import "context"

var FunctionName string

type LambdaContext struct {
	AwsRequestID       string
	InvokedFunctionArn string
}

type key struct{}

func NewContext(parent context.Context, lc *LambdaContext) context.Context { return context.WithValue(parent, key{}, lc) }

func FromContext(ctx context.Context) (*LambdaContext, bool) {
	lc, ok := ctx.Value(key{}).(*LambdaContext)
	return lc, ok
}
`,
  'main.go': `package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

func Handler(ctx context.Context) (map[string]string, error) {
	lc, ok := lambdacontext.FromContext(ctx)
	if !ok {
		return nil, nil
	}
	return map[string]string{"requestId": lc.AwsRequestID, "call": os.Getenv("ZFAAS_CALL"), "function": lambdacontext.FunctionName}, nil
}
`,
};

beforeAll(async () => {
  p = await startUp(['--miniworkers', '2', '--policy', 'runtime']);
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
  upload<{ error?: string; build?: { state: string } }>(
    `${p.api}/registerFunction/go/${name}`,
    await packFiles(files),
    `${name}.tar.gz`,
    fields,
  );

describe('the go runtime', () => {
  it('gives a new function a waiting stem cell of the go runtime, which becomes that function warm', async () => {
    const nodeId = await p.nodeId();
    // A quiet node: a go stem cell ready and no container starting or busy (whose miniworker would be taken).
    const quiet = async (): Promise<true | undefined> => {
      const n = (await http<Array<{ stems: Record<string, number>; containers: Record<string, number> }>>('GET', `${p.api}/nodes`)).body[0];
      return ((n?.stems.go ?? 0) >= 1 && (n?.containers.starting ?? 0) === 0 && (n?.containers.busy ?? 0) === 0) || undefined;
    };
    // Whether a call takes a stem cell is the node's choice on a busy machine (a fresh container when none
    // is ready in time): a few functions, one of which must.
    let adopted = false;
    for (let i = 1; i <= 3 && !adopted; i++) {
      await waitFor('a go stem cell on a quiet node', quiet, 90_000);
      const name = `gstem${i}`;
      expect((await deploy(name, { 'main.go': ORDERS })).status).toBe(201);
      const a = await invoke(name, { item: 'fig', qty: 5 });
      expect(a.status, a.error).toBe('DONE');
      const b = await invoke(name, { item: 'fig', qty: 1 });
      const [ra, rb] = [JSON.parse(a.result) as { total: number; pid: number }, JSON.parse(b.result) as { total: number; pid: number }];
      expect(ra.total).toBe(15);
      expect(rb.pid).toBe(ra.pid); // the loader process became the function, and stays it
      // No container was created for the function: it runs in what was a stem cell.
      adopted = (await labelledContainers({ 'zfaas.node': nodeId, 'zfaas.function': name })).length === 0;
    }
    expect(adopted).toBe(true);
  });

  it('runs a Lambda-style handler with a typed event, warm from its second call, with a deadline in its context', async () => {
    const d = await deploy('gorders', { 'main.go': ORDERS }, { handler: 'main.go.Handler' });
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    expect(d.body.build?.state).toBe('ready');
    const first = await invoke('gorders', { item: 'tea', qty: 2 });
    expect(first.status, first.error).toBe('DONE');
    const a = JSON.parse(first.result) as { item: string; total: number; pid: number; call: string; deadline: boolean };
    expect(a).toMatchObject({ item: 'tea', total: 6, deadline: true });
    expect(first.logs).toContain('ordering 2 tea');
    const second = await invoke('gorders', { item: 'cake', qty: 1 });
    const b = JSON.parse(second.result) as typeof a;
    expect(b).toMatchObject({ item: 'cake', total: 3 });
    expect(b.pid).toBe(a.pid); // the same process: warm
    expect(b.call).not.toBe(a.call); // each call its own ZFAAS_CALL
  });

  it("ends a call whose handler returns an error in ERROR, with the error's message", async () => {
    const r = await invoke('gorders', { item: 'tea', qty: -1 });
    expect(r.status).toBe('ERROR');
    expect(r.error).toContain('qty must not be negative');
  });

  it("puts aws-lambda-go's lambdacontext, when the function vendors it, in the call's context: the call as its request id", async () => {
    const d = await deploy('goctx', WITH_CONTEXT);
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    const r = await invoke('goctx', {});
    expect(r.status, r.error).toBe('DONE');
    const v = JSON.parse(r.result) as { requestId: string; call: string; function: string };
    expect(v.requestId).toBe(v.call);
    expect(v.requestId).toMatch(/^\d+$/);
    expect(v.function).toBe('goctx');
  });

  it('answers web calls through an http.Handler: method, path, query, headers and body in; status, headers and body out', async () => {
    const d = await deploy(
      'goweb',
      { 'go.mod': 'module example.com/api\n\ngo 1.19\n', 'api.go': WEB },
      { handler: 'api.Serve', format: 'gcf' },
    );
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    const r = await fetch(`${p.api}/function/goweb/items/7?name=ana`, { method: 'PUT', headers: { 'x-token': 't1' }, body: 'abc' });
    expect(r.status).toBe(201);
    expect(r.headers.get('content-type')).toBe('text/plain');
    expect(r.headers.get('x-method')).toBe('PUT');
    expect(await r.text()).toBe('PUT /items/7 name=ana token=t1 body=abc');
  });

  it('answers web calls in the lambda format with the response its typed handler returns, and 502 for a malformed one', async () => {
    // The conformance suite's web function: its own API Gateway-shaped types, no aws-lambda-go.
    const web = await readFile(join(import.meta.dirname, '..', 'runtimes', 'conformance', 'go', 'web', 'web.go'), 'utf8');
    const d = await deploy(
      'golambda',
      { 'go.mod': 'module web\n\ngo 1.19\n', 'web.go': web },
      { handler: 'web.Handler', format: 'lambda' },
    );
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    const r = await fetch(`${p.api}/function/golambda/hello?name=ana`);
    expect(r.status).toBe(201);
    expect(r.headers.get('x-path')).toBe('/hello');
    expect(await r.text()).toBe('hello ana');
    expect((await fetch(`${p.api}/function/golambda/bad`)).status).toBe(502);
  });

  it('runs the function once per call under policy none', async () => {
    const d = await deploy('gonce', { 'main.go': ORDERS }, { policy: 'none' });
    expect(d.status, JSON.stringify(d.body)).toBe(201);
    const r = await invoke('gonce', { item: 'jam', qty: 4 });
    expect(r.status, r.error).toBe('DONE');
    expect(JSON.parse(r.result)).toMatchObject({ item: 'jam', total: 12, deadline: true });
    const failed = await invoke('gonce', { item: 'jam', qty: -4 });
    expect(failed.status).toBe('ERROR');
    expect(failed.error).toContain('qty must not be negative');
  });

  it("refuses a package that does not compile at deploy, with the compiler's line", async () => {
    const r = await deploy('gobroken', { 'main.go': 'package main\n\nfunc Handler() (int, error) {\n\treturn nope, nil\n}\n' });
    expect(r.status).toBe(422);
    expect(r.body.error).toMatch(/main\.go:4:9: undefined: nope/);
  });

  it('scaffolds with `zfaas init --template go`, deploys and invokes it with the CLI as written', async () => {
    const dir = await tempDir('zfaas-go-init-');
    const env = { ...process.env, ZFAAS_API: p.api, ZFAAS_CONFIG: '/nonexistent/zfaas.json' };
    const cli = (...args: string[]) => promisify(execFile)(process.execPath, [CLI, ...args], { env });
    try {
      await cli('init', 'goinit', '--template', 'go', '--dir', join(dir, 'goinit'));
      await cli('deploy', 'goinit', join(dir, 'goinit'), '--runtime', 'go');
      const out = await cli('invoke', 'goinit', 'name=ana');
      expect(JSON.parse(out.stdout)).toEqual({ hello: 'ana' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
