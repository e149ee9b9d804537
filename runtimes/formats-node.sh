#!/usr/bin/env bash
# The node loader's formats (protocol/loader.ts, "Web calls"): functions written for AWS Lambda (API Gateway
# payload 2.0 and 1.0), Apache OpenWhisk web actions, the OpenFaaS node templates and Google Cloud Functions
# run unchanged. Each fixture runtimes/fixtures/web-node-<format> runs in a container under the restrictions
# zfaas uses (--network none --read-only --tmpfs /tmp --user 1000:1000 --init, the fixture at /ws read-only)
# with this working copy's runtimes/node/loader.js mounted over the image's, speaking the protocol on
# stdin/stdout. For each format: the status code, a response header, the content type, a query parameter
# and a JSON body reaching the function, a binary body both ways, an error the function throws (ok:false,
# no http answer), a malformed answer (ok:false with the exact reason) and a call without `http`; also
# what format auto picks, and a (req, res) function that never answers (no reply: the node's timeout).
# Needs: docker, node on the host (to write and check the lines).
# Usage: runtimes/formats-node.sh [json lambda lambda-v1 openwhisk openfaas gcf gcf-never ...]
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
FIX="$HERE/fixtures"
LOADER="$HERE/node/loader.js"
IMAGE="${ZFAAS_NODE_IMAGE:-zfaas/node:latest}"
SESSIONS=("$@"); [ ${#SESSIONS[@]} -gt 0 ] || SESSIONS=(json lambda lambda-v1 openwhisk openfaas gcf gcf-never)
PASS=0; FAIL=0
TMP="$(mktemp -d "${TMPDIR:-/tmp}/zfaas-formats-node.XXXXXX")"
RUN="$(basename "$TMP")" # labels this run's containers: cleanup leaves other runs alone
DOCKER_ARGS=(--rm --init --label zfaas.test=formats-node --label "zfaas.test.run=$RUN"
  --network none --read-only --tmpfs /tmp --user 1000:1000)
cleanup() {
  local ids; ids="$(docker ps -aq --filter "label=zfaas.test.run=$RUN" 2>/dev/null)"
  # shellcheck disable=SC2086
  [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

command -v node >/dev/null 2>&1 || { echo "formats-node: node is needed on the host" >&2; exit 1; }
docker image inspect "$IMAGE" >/dev/null 2>&1 || { echo "formats-node: image $IMAGE missing" >&2; exit 1; }

ok()  { PASS=$((PASS + 1)); echo "  ok   $*"; }
bad() { FAIL=$((FAIL + 1)); echo "  FAIL $*"; }

# the fixtures and the loader must be readable by uid 1000 (a fresh clone may have a restrictive umask)
chmod -R a+rX "$FIX"/web-node-* 2>/dev/null || true
chmod a+r "$LOADER" 2>/dev/null || true

# The sessions: node sessions.js dir|requests|check NAME [OUT]. A session is a fixture and its steps, each a
# request (load or call) and the checks of its reply (name -> predicate over the parsed reply).
cat >"$TMP/sessions.js" <<'JS'
'use strict';
const fs = require('fs');
const { isDeepStrictEqual: eq } = require('util');
const [what, name, outFile] = process.argv.slice(2);

const UA = 'formats-node-test/1';
const BIN = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 127, 128, 200, 253, 254, 255]); // not UTF-8
const INVERTED = Buffer.from(BIN.map((b) => 255 - b));
// A web request as the node sends it (protocol/loader.ts, HttpRequestSchema)
const web = (method, path, query = '', headers = {}, body = '') => ({
  method,
  path,
  query,
  headers: { host: 'fn.example.test', 'user-agent': UA, ...headers },
  body: Buffer.from(body).toString('base64'),
  sourceIp: '203.0.113.7',
});
const JSON_TYPE = { 'content-type': 'application/json' };
const BIN_TYPE = { 'content-type': 'application/octet-stream' };
const FORM_TYPE = { 'content-type': 'application/x-www-form-urlencoded' };

// what a reply's web answer holds
const body = (r) => Buffer.from(r.http.body, 'base64');
const text = (r) => body(r).toString('utf8');
const data = (r) => JSON.parse(text(r));
const hdr = (r, k) => r.http.headers[k];
const result = (r) => JSON.parse(r.result);

let id = 0;
const load = (handler, format, checks, env = {}) => ({
  req: { op: 'load', dir: '/ws', handler, env, ...(format === undefined ? {} : { format }) },
  checks,
});
const call = (fields, checks) => ({ req: { op: 'call', id: ++id, params: {}, env: {}, ...fields }, checks });
const loaded = (format) => ({ [`loads (format ${format})`]: (r) => r.op === 'loaded' && r.ok === true && r.format === format });
const picks = (format, what) => ({ [`format auto picks ${format} for ${what}`]: (r) => r.op === 'loaded' && r.ok === true && r.format === format });
const thrown = (head, file) => ({
  [`an error thrown: ok:false, "${head}" and its stack (${file})`]: (r) => r.ok === false && r.error.startsWith(head) && r.error.includes(file),
  'an error thrown: no http answer, so no stack reaches the web client': (r) => r.ok === false && r.http === undefined && r.result === undefined,
});
const malformed = (reason) => ({ [`a malformed answer: ok:false, '${reason}'`]: (r) => r.ok === false && r.error === reason && r.http === undefined });
const status = (n) => ({ [`status code ${n}`]: (r) => r.ok === true && r.http.status === n });
const header = (k, v) => ({ [`response header ${k}: ${v}`]: (r) => eq(hdr(r, k), v) });
const type = (v) => ({ [`content type ${v}`]: (r) => hdr(r, 'content-type') === v });
const binary = (what) => ({ [`a binary body both ways (${what})`]: (r) => r.ok === true && body(r).equals(INVERTED) });
const STATUS_ABC = 'malformed response: statusCode must be an integer from 100 to 599, got "abc"';

const sessions = {
  json: {
    dir: 'web-node-json',
    steps: [
      load(null, 'azure', { 'an unknown format: the load is refused': (r) => r.op === 'error' && r.error.startsWith('load needs format: one of auto, json') }),
      load(null, undefined, picks('json', 'an ES module exporting a function of params')),
      call(
        { params: { name: 'Ada', tag: 'x' }, http: web('POST', '/', 'name=Ada', JSON_TYPE, '{"tag":"x"}') },
        { 'a web call: handler(params), the value is the result, no http in the reply': (r) => r.ok && r.http === undefined && eq(result(r), { hello: 'Ada', keys: ['name', 'tag'] }) },
      ),
      call({ params: { fail: 'why' } }, thrown('Error: json failed on purpose: why', 'index.js:')),
      load(null, 'json', loaded('json')),
      call({ params: { name: 'Bo' } }, { 'a direct call': (r) => r.ok && r.result === '{"hello":"Bo","keys":["name"]}' }),
    ],
  },
  lambda: {
    dir: 'web-node-lambda',
    steps: [
      load('index.handler', undefined, picks('json', 'an (event, context) handler: Lambda is not told from json')),
      load('index.handler', 'lambda', loaded('lambda'), { ZFAAS_FUNCTION: 'greeter' }),
      call(
        { http: web('GET', '/hello', 'name=Ada&x=1') },
        {
          ...status(201),
          ...header('x-served-by', 'greeter'),
          ...type('text/plain; charset=utf-8'),
          'a query parameter reaches the function (queryStringParameters)': (r) => text(r) === 'hello Ada',
          'cookies: each a set-cookie header': (r) => eq(hdr(r, 'set-cookie'), ['session=s1; Path=/; HttpOnly', 'theme=dark']),
        },
      ),
      call(
        { http: web('POST', '/echo', 'tag=a&tag=b', { ...JSON_TYPE, cookie: 'c1=x; c2=y' }, '{"n":7,"s":"ünï"}') },
        {
          'a JSON body reaches the function (as text, isBase64Encoded false)': (r) => eq(data(r).data, { n: 7, s: 'ünï' }),
          'a value without statusCode: 200 application/json': (r) => r.http.status === 200 && hdr(r, 'content-type') === 'application/json',
          'payload 2.0: version, method, sourceIp, cookies, repeated query joined by commas': (r) =>
            eq(data(r), { method: 'POST', tags: 'a,b', data: { n: 7, s: 'ünï' }, cookies: ['c1=x', 'c2=y'], sourceIp: '203.0.113.7', version: '2.0' }),
        },
      ),
      call({ http: web('POST', '/invert', '', BIN_TYPE, BIN) }, { ...binary('isBase64Encoded in the event and the answer'), ...type('application/octet-stream') }),
      call({ http: web('GET', '/fail') }, thrown('Error: lambda failed on purpose', 'index.mjs:')),
      call({ http: web('GET', '/bad-status') }, malformed(STATUS_ABC)),
      call({ http: web('GET', '/bad-header') }, malformed('malformed response: header "x-split" contains CR or LF')),
      call({ http: web('GET', '/bad-base64') }, malformed('malformed response: isBase64Encoded is true but body is not valid base64')),
      call(
        { params: { n: 1 }, env: { ZFAAS_CALL: '77' } },
        { 'a direct call: the params are the event, the value the result': (r) => r.ok && !r.http && eq(result(r), { direct: true, got: { n: 1 }, requestId: '77', left: true }) },
      ),
      load('styles.callback', 'lambda', loaded('lambda')),
      call(
        { http: web('GET', '/cb'), env: { ZFAAS_CALL: '78' } },
        { 'callback(null, response) style': (r) => r.http.status === 202 && hdr(r, 'x-style') === 'callback' && eq(data(r), { path: '/cb', request: '78' }) },
      ),
      load('styles.legacy', 'lambda', loaded('lambda')),
      call({ http: web('GET', '/old') }, { 'context.succeed(response) style': (r) => hdr(r, 'x-style') === 'context.succeed' && text(r) === 'legacy /old' }),
      load('styles.sync', 'lambda', loaded('lambda')),
      call({ http: web('GET', '/now') }, { 'a plain (sync) return': (r) => hdr(r, 'x-style') === 'sync' && text(r) === 'sync /now' }),
    ],
  },
  'lambda-v1': {
    dir: 'web-node-lambda-v1',
    steps: [
      load(null, 'lambda-v1', loaded('lambda-v1')),
      call(
        { http: web('GET', '/hello', 'name=Ada') },
        {
          ...status(201),
          ...header('x-api', 'rest'),
          ...type('text/plain'),
          'a query parameter reaches the function (queryStringParameters)': (r) => text(r) === 'hello Ada',
          'multiValueHeaders: set-cookie twice': (r) => eq(hdr(r, 'set-cookie'), ['a=1', 'b=2']),
        },
      ),
      call(
        { http: web('POST', '/echo', 'name=Ada&tag=1&tag=2', JSON_TYPE, '{"n":7}') },
        {
          'a JSON body reaches the function': (r) => eq(data(r).data, { n: 7 }),
          'payload 1.0: httpMethod, multiValueQueryStringParameters, pathParameters.proxy, resource, identity': (r) =>
            eq(data(r), { method: 'POST', name: 'Ada', tags: ['1', '2'], proxy: 'echo', resource: '/{proxy+}', data: { n: 7 }, userAgent: UA }),
        },
      ),
      call({ http: web('POST', '/invert', '', BIN_TYPE, BIN) }, { ...binary('base64 in, isBase64Encoded out'), ...type('image/png') }),
      call({ http: web('GET', '/fail') }, thrown('Error: lambda-v1 failed on purpose', 'index.js:')),
      call({ http: web('GET', '/bad-status') }, malformed(STATUS_ABC)),
      call(
        { http: web('GET', '/plain') },
        malformed(
          'malformed response: statusCode is missing: payload 1.0 needs {statusCode, headers, body} (API Gateway: "Malformed Lambda proxy response"), got an object',
        ),
      ),
      call({ params: { n: 2 } }, { 'a direct call: the params are the event, the value the result': (r) => r.ok && eq(result(r).got, { n: 2 }) }),
    ],
  },
  openwhisk: {
    dir: 'web-node-openwhisk',
    steps: [
      load(null, undefined, picks('openwhisk', 'a plain script with function main (it exports nothing)')),
      call(
        { http: web('GET', '/hello', 'name=Ada') },
        { ...status(201), ...header('x-action', 'hello'), ...type('text/plain'), 'a query parameter reaches main': (r) => text(r) === 'hello Ada' },
      ),
      call(
        { http: web('POST', '/echo', 'name=Ada', JSON_TYPE, '{"data":{"n":7}}') },
        {
          "a JSON body's parameters reach main beside the query's and __ow_*": (r) =>
            eq(data(r), { method: 'post', name: 'Ada', data: { n: 7 }, query: 'name=Ada', ua: UA }),
          'an object body answers JSON': (r) => r.http.status === 200 && hdr(r, 'content-type') === 'application/json',
        },
      ),
      call(
        { http: web('POST', '/echo', 'name=Ada', FORM_TYPE, 'name=Bo&data=z') },
        { "a form body's parameters reach main (over the query's)": (r) => data(r).name === 'Bo' && data(r).data === 'z' },
      ),
      call({ http: web('POST', '/invert', '', BIN_TYPE, BIN) }, { ...binary('__ow_body base64 in, a base64 body for image/png out'), ...type('image/png') }),
      call(
        { http: web('GET', '/plain', 'name=Cy') },
        { 'a value without statusCode/headers/body: 200 JSON of it': (r) => r.http.status === 200 && eq(data(r), { answer: 42, name: 'Cy' }) },
      ),
      call({ http: web('GET', '/later') }, { 'a promise; a string body defaults to text/html': (r) => text(r) === 'later' && hdr(r, 'content-type') === 'text/html; charset=utf-8' }),
      call({ http: web('GET', '/fail') }, thrown('Error: action failed on purpose', 'index.js:')),
      call({ http: web('GET', '/bad-status') }, malformed(STATUS_ABC)),
      call({ params: { n: 3 } }, { 'a direct call: main(params), the value the result': (r) => r.ok && !r.http && eq(result(r), { direct: true, got: { n: 3 } }) }),
      load('exported.main', undefined, picks('json', 'an exported main (OpenWhisk is not told from json)')),
      load('exported.main', 'openwhisk', loaded('openwhisk')),
      call({ http: web('GET', '/', 'name=Di') }, { 'format openwhisk with an exported main': (r) => eq(data(r), { exported: true, name: 'Di' }) }),
    ],
  },
  openfaas: {
    dir: 'web-node-openfaas',
    steps: [
      load(null, 'openfaas', loaded('openfaas')),
      call(
        { http: web('GET', '/hello', 'name=Ada') },
        {
          ...status(201),
          ...header('x-faas', 'node20'),
          ...type('text/plain; charset=utf-8'),
          'a query parameter reaches the function (event.query)': (r) => text(r) === 'hello Ada',
        },
      ),
      call(
        { http: web('POST', '/echo', 'tag=a&tag=b', JSON_TYPE, '{"n":7}') },
        {
          'a JSON body reaches the function (event.body parsed)': (r) => eq(data(r).body, { n: 7 }),
          'a returned object is the body, as JSON': (r) => r.http.status === 200 && hdr(r, 'content-type') === 'application/json; charset=utf-8',
          'event: method, query, headers': (r) => eq(data(r), { method: 'POST', tags: ['a', 'b'], body: { n: 7 }, contentType: 'application/json' }),
        },
      ),
      call({ http: web('POST', '/echo', '', { 'content-type': 'text/plain' }, 'just text') }, { 'a text body is a string': (r) => data(r).body === 'just text' }),
      call({ http: web('POST', '/invert', '', BIN_TYPE, BIN) }, { ...binary('event.body a Buffer, succeed(Buffer)'), ...type('application/octet-stream') }),
      call({ http: web('POST', '/refuse') }, { 'context.fail(value): 500 with the value': (r) => r.ok && r.http.status === 500 && text(r) === 'not allowed here' }),
      call({ http: web('GET', '/fail') }, thrown('Error: openfaas handler failed on purpose', 'handler.js:')),
      call({ http: web('GET', '/bad-status') }, malformed('malformed response: status must be an integer from 100 to 599, got "abc"')),
      call({ params: { n: 4 } }, { 'a direct call: event.body = params, the body the result': (r) => r.ok && !r.http && eq(result(r), { direct: true, got: { n: 4 } }) }),
    ],
  },
  gcf: {
    dir: 'web-node-gcf',
    steps: [
      load(null, undefined, picks('gcf', 'an exported (req, res) function')),
      call(
        { http: web('GET', '/hello', 'name=Ada') },
        { ...status(201), ...header('x-region', 'local'), ...type('text/plain; charset=utf-8'), 'a query parameter reaches the function (req.query)': (r) => text(r) === 'hello Ada' },
      ),
      call(
        { http: web('POST', '/echo', 'tag=a&tag=b', JSON_TYPE, '{"n":7}') },
        {
          'a JSON body reaches the function (req.body parsed)': (r) => eq(data(r).body, { n: 7 }),
          'res.json: application/json': (r) => r.http.status === 200 && hdr(r, 'content-type') === 'application/json; charset=utf-8',
          'req: method, query, get(), ip': (r) => eq(data(r), { method: 'POST', tags: ['a', 'b'], body: { n: 7 }, contentType: 'application/json', ip: '203.0.113.7' }),
        },
      ),
      call({ http: web('POST', '/echo', '', FORM_TYPE, 'a=1&b=two') }, { 'a form body is an object': (r) => eq(data(r).body, { a: '1', b: 'two' }) }),
      call({ http: web('POST', '/invert', '', BIN_TYPE, BIN) }, { ...binary('req.rawBody, res.send(Buffer)'), ...type('application/octet-stream') }),
      call({ http: web('GET', '/later') }, { 'answered after the function returned': (r) => r.http.status === 202 && text(r) === 'answered later' }),
      call({ http: web('GET', '/fail') }, thrown('Error: cloud function failed on purpose', 'index.js:')),
      call({ http: web('GET', '/bad-status') }, malformed(STATUS_ABC)),
      call({ http: web('GET', '/bad-header') }, malformed('malformed response: header "X-Split" contains CR or LF')),
      call({ http: { method: 'GET', path: '/' } }, { 'a call with a malformed http: refused': (r) => r.op === 'error' && r.error.startsWith('call needs http') }),
      call({ params: { n: 5 } }, { 'a direct call: a POST of the params, the body the result': (r) => r.ok && !r.http && eq(result(r), { direct: true, got: { n: 5 } }) }),
      load('alt.handle', undefined, picks('gcf', 'an async (request, response) function')),
      call(
        { http: web('GET', '/', '', { 'x-part': 'done' }) },
        {
          'writeHead, write, end after an await: streamed, head then chunks': (r) =>
            r.streamedOk && r.http.status === 200 && text(r) === 'streamed done' && hdr(r, 'content-type') === 'text/plain',
        },
      ),
    ],
  },
  'gcf-never': {
    dir: 'web-node-gcf',
    hangs: true, // the last call never answers: the container is stopped after a while
    steps: [
      load(null, 'gcf', loaded('gcf')),
      call({ http: web('GET', '/never') }, { 'a function that never answers: no reply (the node ends it in TIMEOUT)': (r) => r === undefined }),
    ],
  },
};

const s = sessions[name];
if (!s) {
  console.error(`unknown session ${name}: ${Object.keys(sessions).join(' ')}`);
  process.exit(64);
}
if (what === 'dir') console.log(s.dir);
else if (what === 'hangs') console.log(s.hangs ? 'yes' : 'no');
else if (what === 'requests') for (const step of s.steps) console.log(JSON.stringify(step.req));
else {
  const lines = fs.readFileSync(outFile, 'utf8').split('\n').filter(Boolean);
  let replies;
  try {
    replies = lines.map((l) => JSON.parse(l));
  } catch (e) {
    console.log(`FAIL ${name}: a line is not JSON: ${e.message}`);
    process.exit(0);
  }
  const hello = replies.shift();
  if (!hello || hello.op !== 'hello') console.log(`FAIL ${name}: no hello first`);
  // A streamed answer (protocol version 3): its head and chunks fold into the result that follows them.
  const folded = [];
  let streamed = null;
  for (const r of replies) {
    if (r.op === 'head') streamed = { head: r, chunks: [] };
    else if (r.op === 'chunk' && streamed) streamed.chunks.push(Buffer.from(r.data, 'base64'));
    else {
      if (streamed && r.op === 'result' && r.ok && r.http) {
        const body = Buffer.concat(streamed.chunks);
        r.http = { status: streamed.head.status, headers: streamed.head.headers, body: body.toString('base64') };
        r.streamedOk = r.streamed === body.length;
      }
      streamed = null;
      folded.push(r);
    }
  }
  replies = folded;
  s.steps.forEach((step, i) => {
    const r = replies[i];
    for (const [label, check] of Object.entries(step.checks)) {
      let good = false;
      try {
        good = !!check(r);
      } catch (_) {}
      if (good) console.log(`ok ${name}: ${label}`);
      else console.log(`FAIL ${name}: ${label}\n         got: ${(JSON.stringify(r) || 'nothing').slice(0, 600)}`);
    }
  });
  if (replies.length > s.steps.length) console.log(`FAIL ${name}: ${replies.length - s.steps.length} replies more than requests`);
}
JS

# session NAME: its requests on the loader's stdin in one container, then its checks.
session() {
  local name="$1" dir hangs
  dir="$(node "$TMP/sessions.js" dir "$name")" || { bad "$name: no such session"; return; }
  hangs="$(node "$TMP/sessions.js" hangs "$name")"
  node "$TMP/sessions.js" requests "$name" >"$TMP/$name.in"
  # a hanging session keeps stdin open (as the node keeps its socket): the loader waits, never exits
  local limit=60 hold=0; [ "$hangs" = yes ] && limit=4 hold=5
  { cat "$TMP/$name.in"; [ $hold = 0 ] || sleep $hold; } |
    timeout "$limit" docker run -i "${DOCKER_ARGS[@]}" -v "$FIX/$dir":/ws:ro -w /ws -v "$LOADER":/opt/zfaas/loader.js:ro \
      "$IMAGE" node /opt/zfaas/loader.js >"$TMP/$name.out" 2>"$TMP/$name.err"
  local rc=$?
  if [ "$hangs" = yes ]; then
    if [ $rc = 124 ]; then ok "$name: the loader still waits for the answer after ${limit} s"; else bad "$name: rc=$rc (want 124: still running)"; fi
  elif [ $rc != 0 ]; then
    bad "$name: the loader exited $rc"; sed 's/^/       err: /' "$TMP/$name.err" | tail -n 5
  fi
  local line
  while IFS= read -r line; do
    case "$line" in
    "ok "*) ok "${line#ok }" ;;
    "FAIL "*) bad "${line#FAIL }" ;;
    *) echo "$line" ;;
    esac
  done < <(node "$TMP/sessions.js" check "$name" "$TMP/$name.out" 2>&1)
}

T0=$(date +%s.%N)
echo "node loader formats ($IMAGE, loader $LOADER)"
for s in "${SESSIONS[@]}"; do session "$s"; done
echo "formats-node: $PASS passed, $FAIL failed ($(awk -v s="$T0" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f s", e-s}'))"
[ "$FAIL" = 0 ]
