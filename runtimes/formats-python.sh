#!/usr/bin/env bash
# The python loader's formats (protocol/loader.ts, "Web calls"): functions written for AWS Lambda (API
# Gateway payload 2.0 and 1.0), Apache OpenWhisk web actions and the OpenFaaS python3-http template run
# unchanged, beside zfaas's own json contract. Uses the fixtures runtimes/fixtures/web-py-<format>.
# Each session is one container with the restrictions zfaas uses (--network none --read-only --tmpfs /tmp
# --user 1000:1000, the fixture at /ws read-only) running the working copy's runtimes/python/loader.py
# (mounted over the image's) on stdin/stdout: a load, then calls carrying `http` (web calls) or not
# (direct calls). For each format it shows the status code, a response header, the content type, a query
# parameter and a JSON body reaching the function, a binary body both ways (base64 in, base64 out), an
# error the function raises (ok:false, no http answer), malformed answers (ok:false saying exactly what is
# wrong) and a direct call; then auto-detection, refused formats and requests, and the run-once mode.
# Needs: docker, node on the host (to check JSON). Usage: runtimes/formats-python.sh
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# the protocol version the loaders must say in hello (generated from protocol/loader.ts)
export ZFAAS_PROTOCOL_JSON="$HERE/loader-protocol.json"
FIX="$HERE/fixtures"
IMAGE="${ZFAAS_PYTHON_IMAGE:-zfaas/python:latest}"
LOADER="$HERE/python/loader.py"
IN_IMAGE=/opt/zfaas/loader.py # where runtimes/python/Dockerfile* put the loader
PASS=0; FAIL=0
TMP="$(mktemp -d "${TMPDIR:-/tmp}/zfaas-formats-python.XXXXXX")"
RUN="$(basename "$TMP")" # labels this run's containers: cleanup leaves other runs alone
DOCKER_ARGS=(--rm --label zfaas.test=formats-python --label "zfaas.test.run=$RUN" --network none --read-only
  --tmpfs /tmp --user 1000:1000 -v "$LOADER:$IN_IMAGE:ro")
cleanup() {
  local ids; ids="$(docker ps -aq --filter "label=zfaas.test.run=$RUN" 2>/dev/null)"
  # shellcheck disable=SC2086
  [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

command -v node >/dev/null 2>&1 || { echo "formats-python: node is needed on the host" >&2; exit 1; }
docker image inspect "$IMAGE" >/dev/null 2>&1 || { echo "formats-python: image $IMAGE missing (run runtimes/build-images.sh)" >&2; exit 1; }
chmod -R a+rX "$FIX" "$LOADER" 2>/dev/null || true # readable by uid 1000 whatever the umask

ok()  { PASS=$((PASS + 1)); echo "  ok   $*"; }
bad() { FAIL=$((FAIL + 1)); echo "  FAIL $*"; }

# ---------------------------------------------------------------- requests
DEADLINE=$(($(date +%s%3N) + 60000))
b64() { printf '%s' "$1" | base64 -w0; }
BIN_B64="$(printf '\x89PNG\r\n\x1a\n\x00\x01\x02\xfe\xff binary \xc3\x28 end' | base64 -w0)" # not UTF-8
export BIN_B64
JSON_BODY="$(b64 '{"n":41,"who":"json body","name":"Body"}')"
H_GET='{"host":"fn.example.test:8080","user-agent":"formats-test/1.0","accept":"*/*","cookie":"session=old; theme=light"}'
H_JSON='{"host":"fn.example.test","user-agent":"formats-test/1.0","content-type":"application/json"}'
H_BIN='{"host":"fn.example.test","user-agent":"formats-test/1.0","content-type":"application/octet-stream"}'
H_FORM='{"host":"fn.example.test","user-agent":"formats-test/1.0","content-type":"application/x-www-form-urlencoded"}'

# load FORMAT(JSON string, or "" for none: auto) HANDLER(JSON) FUNCTION_NAME
load() {
  local fmt=""; [ -z "$1" ] || fmt=",\"format\":$1"
  printf '{"op":"load","dir":"/ws","handler":%s,"env":{"ZFAAS_FUNCTION":"%s","ZFAAS_FUNCTION_VERSION":"3","ZFAAS_MEMORY":"256"}%s}\n' "$2" "$3" "$fmt"
}
callenv() { printf '{"ZFAAS_CALL":"%s","ZFAAS_DEADLINE":"%s"}' "$1" "$DEADLINE"; }
# web ID METHOD PATH QUERY HEADERS(JSON) BODY(base64) [PARAMS(JSON)]: a call carrying `http`
web() {
  local params="${7:-}"; [ -n "$params" ] || params='{}'
  printf '{"op":"call","id":%s,"params":%s,"env":%s,"http":{"method":"%s","path":"%s","query":"%s","headers":%s,"body":"%s","sourceIp":"203.0.113.9"}}\n' \
    "$1" "$params" "$(callenv "$1")" "$2" "$3" "$4" "$5" "$6"
}
# direct ID PARAMS(JSON): a call without `http`
direct() { printf '{"op":"call","id":%s,"params":%s,"env":%s}\n' "$1" "$2" "$(callenv "$1")"; }

# ---------------------------------------------------------------- running and checking
# session NAME DIR: one loader container answering the requests in $TMP/NAME.in; its replies in $TMP/NAME.out. Checks
# that it exits 0 after one reply a request (after its hello), and that every `http` it answers with is
# what the node accepts (HttpResponseSchema: status 100-599, header names lower-case tokens, values strings
# or lists of strings without CR/LF, body base64).
session() {
  local name="$1" dir="$2" in="$TMP/$1.in" out="$TMP/$1.out" err="$TMP/$1.err"
  docker run -i "${DOCKER_ARGS[@]}" -v "$dir":/ws:ro -w /ws "$IMAGE" python3 "$IN_IMAGE" <"$in" >"$out" 2>"$err"
  local rc=$?
  if [ $rc = 0 ] && WANT="$(wc -l <"$in")" node -e '
      const r = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
      const hello = r.shift();
      if (!hello || hello.op !== "hello" || hello.v !== require(process.env.ZFAAS_PROTOCOL_JSON).version) throw new Error("no hello first");
      if (r.length !== Number(process.env.WANT)) throw new Error(`${r.length} replies to ${process.env.WANT} requests`);
      for (const m of r) {
        if (m.op === "result" && m.ok && !("http" in m) && typeof m.result !== "string") throw new Error(`call ${m.id}: no result`);
        if ("result" in m && typeof m.result !== "string") throw new Error(`call ${m.id}: a result that is not a string`);
        if (!("http" in m)) continue;
        const h = m.http, where = `call ${m.id}: http `;
        if (!h || !Number.isInteger(h.status) || h.status < 100 || h.status > 599) throw new Error(where + "status");
        if (!h.headers || typeof h.headers !== "object" || Array.isArray(h.headers)) throw new Error(where + "headers");
        for (const [k, v] of Object.entries(h.headers)) {
          if (!/^[!#$%&\x27*+.^_`|~0-9a-z-]+$/.test(k)) throw new Error(where + "header name " + k);
          for (const x of Array.isArray(v) ? v : [v]) if (typeof x !== "string" || /[\r\n]/.test(x)) throw new Error(where + "header " + k);
        }
        if (typeof h.body !== "string" || Buffer.from(h.body, "base64").toString("base64") !== h.body) throw new Error(where + "body is not base64");
      }
    ' "$out" 2>"$TMP/$name.shape"; then
    ok "$name: one reply a request, every http answer well formed"
  else
    bad "$name (rc=$rc): $(grep -m1 Error "$TMP/$name.shape")"
    sed 's/^/       out: /' "$out" | cut -c1-400; sed 's/^/       err: /' "$err" | tail -n 5
  fi
}

cat >"$TMP/check.js" <<'JS'
'use strict';
// check.js OUT: evaluates $CHECK over the loader's replies in OUT. Helpers: loaded (the first `loaded`),
// L[i] (the i-th), E[i] (the i-th `error`), R(id) (the reply to call id), H(id) (its http), hdr(id, name),
// B(id) (the response body, a Buffer), T(id) (as text), J(id) (as JSON), res(id) (its result as JSON),
// eq(a, b) (deep equality), BIN and REV (the binary test body and its reverse).
const fs = require('fs');
const assert = require('assert');
const r = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const L = r.filter((m) => m.op === 'loaded');
const loaded = L[0];
const E = r.filter((m) => m.op === 'error');
const R = (id) => {
  const m = r.find((x) => (x.op === 'result' || x.op === 'error') && x.id === id);
  if (!m) throw new Error(`no reply to call ${id}`);
  return m;
};
const H = (id) => {
  const h = R(id).http;
  if (!h) throw new Error(`the reply to call ${id} has no http`);
  return h;
};
const hdr = (id, name) => H(id).headers[name];
const B = (id) => Buffer.from(H(id).body, 'base64');
const T = (id) => B(id).toString('utf8');
const J = (id) => JSON.parse(T(id));
const res = (id) => JSON.parse(R(id).result);
const eq = (a, b) => {
  try {
    assert.deepStrictEqual(a, b);
    return true;
  } catch (_) {
    return false;
  }
};
const BIN = Buffer.from(process.env.BIN_B64, 'base64');
const REV = Buffer.from(BIN).reverse();
let good = false;
try {
  good = !!eval(process.env.CHECK);
} catch (e) {
  console.log(`       threw: ${e.message}`);
}
if (!good) {
  const ids = new Set([...process.env.CHECK.matchAll(/\b(?:R|H|hdr|B|T|J|res)\((\d+)/g)].map((m) => Number(m[1])));
  for (const m of r) if (ids.has(m.id) || (ids.size === 0 && m.op !== 'hello')) console.log('       reply: ' + JSON.stringify(m).slice(0, 600));
  process.exit(1);
}
JS

# check SESSION WHAT EXPR: one claim about a session's replies (see check.js for the helpers)
check() {
  local out
  if out="$(CHECK="$3" node "$TMP/check.js" "$TMP/$1.out" 2>&1)"; then ok "$1: $2"; else bad "$1: $2"; echo "$out"; fi
}

# The error a function's bad statusCode gets, in every format.
export BAD_STATUS="malformed response: statusCode must be an integer from 100 to 599, got 'abc'"

# ---------------------------------------------------------------- lambda (payload 2.0), found by auto
echo "lambda: API Gateway HTTP API, payload 2.0 ($IMAGE, fixtures/web-py-lambda, format auto)"
{
  load "" null web-py-lambda
  web 1 GET / 'name=Ada&tag=x&tag=y' "$H_GET" ""
  web 2 POST / '' "$H_JSON" "$JSON_BODY"
  web 3 POST /binary '' "$H_BIN" "$BIN_B64"
  web 4 GET /error '' "$H_GET" ""
  web 5 GET /malformed '' "$H_GET" ""
  web 6 GET /bad-header '' "$H_GET" ""
  web 7 GET /bad-base64 '' "$H_GET" ""
  web 8 GET /plain '' "$H_GET" ""
  direct 9 '{"n":7}'
  web 10 GET /plain-text '' "$H_GET" ""
  web 11 GET /huge '' "$H_GET" ""
} >"$TMP/lambda.in"
session lambda "$FIX/web-py-lambda"
check lambda 'auto: lambda_function.lambda_handler -> lambda' 'loaded.ok && loaded.format === "lambda"'
check lambda 'status code' 'R(1).ok && H(1).status === 201'
check lambda 'a response header' 'hdr(1, "x-fixture") === "lambda"'
check lambda 'content type' 'hdr(1, "content-type") === "application/json; charset=utf-8"'
check lambda 'cookies become set-cookie headers' 'eq(hdr(1, "set-cookie"), ["session=abc; Path=/; HttpOnly", "theme=dark"])'
check lambda 'query parameters reach it (repeated ones joined with commas)' 'J(1).name === "Ada" && J(1).tags === "x,y" && J(1).rawQuery === "name=Ada&tag=x&tag=y"'
check lambda 'the event: version, routeKey, method, path, source ip, user agent, domain, stage, request id' \
  'eq([J(1).version, J(1).routeKey, J(1).method, J(1).path, J(1).sourceIp, J(1).userAgent, J(1).domainName, J(1).stage, J(1).requestId], ["2.0", "$default", "GET", "/", "203.0.113.9", "formats-test/1.0", "fn.example.test", "$default", "1"])'
check lambda 'the cookie header becomes event.cookies' 'eq(J(1).cookies, ["session=old", "theme=light"]) && J(1).hasCookieHeader === false'
check lambda 'a JSON body reaches it' 'R(2).ok && J(2).method === "POST" && eq(J(2).json, {n: 41, who: "json body", name: "Body"})'
check lambda 'a binary body in as base64 (isBase64Encoded) and out as base64' \
  'H(3).status === 200 && hdr(3, "content-type") === "image/png" && hdr(3, "x-in-base64") === "true" && B(3).equals(REV)'
check lambda 'an error it raises: ok:false with the error, no http answer' \
  'R(4).ok === false && !("http" in R(4)) && R(4).error.startsWith("RuntimeError: the lambda fixture fails on purpose") && R(4).error.includes("lambda_function.py")'
check lambda 'malformed: a statusCode that is not a status' 'R(5).ok === false && !("http" in R(5)) && R(5).error === process.env.BAD_STATUS'
check lambda 'malformed: CR/LF in a header value' \
  'R(6).ok === false && R(6).error === "malformed response: header \x27x-split\x27 has a value containing CR or LF: \x27one\\r\\nx-injected: two\x27"'
check lambda 'malformed: isBase64Encoded with a body that is not base64' \
  'R(7).ok === false && R(7).error === "malformed response: isBase64Encoded is true but body is not valid base64"'
check lambda 'a value without statusCode: 200 with it as JSON (and as result)' \
  'H(8).status === 200 && hdr(8, "content-type") === "application/json" && eq(J(8), {plain: true, items: [1, 2, 3]}) && eq(res(8), J(8))'
check lambda 'a str without statusCode: the body as it is' \
  'H(10).status === 200 && hdr(10, "content-type") === "application/json" && T(10) === "Hello from a lambda" && R(10).result === "Hello from a lambda"'
check lambda 'a body over RESULT_LIMIT bytes: ok:false, response too large' \
  'R(11).ok === false && !("http" in R(11)) && R(11).error === "response too large: its body is 6291457 bytes, at most 6291456"'
check lambda 'a direct call: the params are the event, the return value the result; the context' \
  'R(9).ok && !("http" in R(9)) && eq([res(9).direct, res(9).n, res(9).requestId, res(9).function, res(9).memory, res(9).logGroup], [true, 7, "9", "web-py-lambda", "256", "/aws/lambda/web-py-lambda"]) && res(9).arn.endsWith(":function:web-py-lambda") && res(9).remaining > 30000'
check lambda 'a response comes back as http only (no result)' '!("result" in R(1)) && !("result" in R(3))'

# ---------------------------------------------------------------- lambda-v1 (payload 1.0)
echo "lambda-v1: API Gateway REST API, payload 1.0 (fixtures/web-py-lambda-v1, format lambda-v1, handler lambda_function.lambda_handler)"
{
  load '"lambda-v1"' '"lambda_function.lambda_handler"' web-py-lambda-v1
  web 1 GET /items/42 'name=Ada&tag=x&tag=y' "$H_GET" ""
  web 2 POST / '' "$H_JSON" "$JSON_BODY"
  web 3 POST /binary '' "$H_BIN" "$BIN_B64"
  web 4 GET /error '' "$H_GET" ""
  web 5 GET /malformed '' "$H_GET" ""
  web 6 GET /bad-header '' "$H_GET" ""
  web 7 GET /plain '' "$H_GET" ""
  direct 8 '{"n":8}'
} >"$TMP/lambda-v1.in"
session lambda-v1 "$FIX/web-py-lambda-v1"
check lambda-v1 'loaded says lambda-v1' 'loaded.ok && loaded.format === "lambda-v1"'
check lambda-v1 'status code' 'R(1).ok && H(1).status === 202'
check lambda-v1 'a response header; multiValueHeaders become lists' 'hdr(1, "x-fixture") === "lambda-v1" && eq(hdr(1, "x-tags"), ["x", "y"])'
check lambda-v1 'content type' 'hdr(1, "content-type") === "application/json"'
check lambda-v1 'query parameters reach it (queryStringParameters, multiValueQueryStringParameters)' 'J(1).name === "Ada" && eq(J(1).tags, ["x", "y"])'
check lambda-v1 'the event: resource, path, proxy, method, identity, stage, stageVariables' \
  'eq([J(1).resource, J(1).path, J(1).proxy, J(1).method, J(1).sourceIp, J(1).userAgent, J(1).stage, J(1).stageVariables, J(1).requestId], ["/{proxy+}", "/items/42", "items/42", "GET", "203.0.113.9", "formats-test/1.0", "$default", null, "1"])'
check lambda-v1 'a JSON body reaches it' 'R(2).ok && J(2).resource === "/" && J(2).proxy === null && eq(J(2).json, {n: 41, who: "json body", name: "Body"})'
check lambda-v1 'a binary body in as base64 (isBase64Encoded) and out as base64' \
  'H(3).status === 200 && hdr(3, "content-type") === "image/png" && hdr(3, "x-in-base64") === "true" && B(3).equals(REV)'
check lambda-v1 'an error it raises: ok:false with the error, no http answer' \
  'R(4).ok === false && !("http" in R(4)) && R(4).error.startsWith("KeyError: \x27the lambda-v1 fixture fails on purpose\x27")'
check lambda-v1 'malformed: a statusCode that is not a status' 'R(5).ok === false && !("http" in R(5)) && R(5).error === process.env.BAD_STATUS'
check lambda-v1 'malformed: a header value that is not a string' \
  'R(6).ok === false && R(6).error === "malformed response: header \x27X-Count\x27 must be a string, an integer or a list of them, got {\x27n\x27: 1}"'
check lambda-v1 'malformed: a value without statusCode (payload 1.0 has no default)' \
  'R(7).ok === false && !("http" in R(7)) && R(7).error === "malformed response: a lambda-v1 (payload 1.0) answer must be an object with statusCode, got {\x27plain\x27: True}"'
check lambda-v1 'a direct call: the params are the event' 'R(8).ok && !("http" in R(8)) && eq(res(8), {direct: true, n: 8, requestId: "8"})'

# ---------------------------------------------------------------- openwhisk
echo "openwhisk: web actions (fixtures/web-py-openwhisk, format openwhisk)"
{
  load '"openwhisk"' null web-py-openwhisk
  web 1 GET / 'name=Ada' "$H_GET" ""
  web 2 POST /sub/path 'name=Query&who=query' "$H_JSON" "$JSON_BODY"
  web 3 POST /binary '' "$H_BIN" "$BIN_B64"
  web 4 GET /error '' "$H_GET" ""
  web 5 GET /malformed '' "$H_GET" ""
  web 6 GET /bad-header '' "$H_GET" ""
  web 7 GET /bad-base64 '' "$H_GET" ""
  web 8 GET /plain '' "$H_GET" ""
  direct 9 '{"n":9}'
  web 10 POST /html '' "$H_FORM" "$(b64 'name=Form+Data&x=1')"
  web 11 DELETE /nothing '' "$H_GET" ""
} >"$TMP/openwhisk.in"
session openwhisk "$FIX/web-py-openwhisk"
check openwhisk 'loaded says openwhisk' 'loaded.ok && loaded.format === "openwhisk"'
check openwhisk 'status code' 'R(1).ok && H(1).status === 201'
check openwhisk 'a response header' 'hdr(1, "x-fixture") === "openwhisk"'
check openwhisk 'content type (a dict body is JSON)' 'hdr(1, "content-type") === "application/json"'
check openwhisk 'a query parameter reaches it, and __ow_method, __ow_path, __ow_query, __ow_headers, __ow_body' \
  'eq(J(1), {method: "get", path: "", query: "name=Ada", name: "Ada", n: null, who: null, userAgent: "formats-test/1.0", rawBody: ""})'
check openwhisk 'a JSON body reaches it: its parameters over the query parameters; __ow_body the raw text' \
  'R(2).ok && J(2).n === 41 && J(2).who === "json body" && J(2).name === "Body" && J(2).path === "/sub/path" && J(2).query === "name=Query&who=query" && JSON.parse(J(2).rawBody).n === 41'
check openwhisk 'a binary body in as base64 (__ow_body) and out as base64 (binary content type)' \
  'H(3).status === 200 && hdr(3, "content-type") === "image/png" && B(3).equals(REV)'
check openwhisk 'an error it raises: ok:false with the error, no http answer' \
  'R(4).ok === false && !("http" in R(4)) && R(4).error.startsWith("ValueError: the openwhisk fixture fails on purpose")'
check openwhisk 'malformed: a statusCode that is not a status' 'R(5).ok === false && !("http" in R(5)) && R(5).error === process.env.BAD_STATUS'
check openwhisk 'malformed: LF in a header value' \
  'R(6).ok === false && R(6).error === "malformed response: header \x27Location\x27 has a value containing CR or LF: \x27/next\\n\x27"'
check openwhisk 'malformed: a binary content type with a body that is not base64' \
  'R(7).ok === false && R(7).error === "malformed response: body must be base64 for content-type image/png, got \x27not base64 at all\x27"'
check openwhisk 'a value with none of statusCode/headers/body: 200 with it as JSON (and as result)' \
  'H(8).status === 200 && hdr(8, "content-type") === "application/json" && eq(J(8), {plain: true}) && eq(res(8), {plain: true})'
check openwhisk 'no statusCode and no body: 204; a response comes back as http only' \
  'H(11).status === 204 && hdr(11, "x-empty") === "yes" && B(11).length === 0 && !("content-type" in H(11).headers) && !("result" in R(11)) && !("result" in R(1))'
check openwhisk 'a direct call: main(params)' 'R(9).ok && !("http" in R(9)) && eq(res(9), {direct: true, n: 9})'
check openwhisk 'form data reaches it as parameters; a str body without content type is text/html' \
  'H(10).status === 200 && hdr(10, "content-type") === "text/html; charset=utf-8" && T(10) === "<h1>hello Form Data</h1>"'

# ---------------------------------------------------------------- openfaas (python3-http), found by auto
echo "openfaas: the python3-http template (fixtures/web-py-openfaas, format auto)"
{
  load "" null web-py-openfaas
  web 1 GET / 'name=Ada&tag=x&tag=y' "$H_GET" ""
  web 2 POST /submit '' "$H_JSON" "$JSON_BODY"
  web 3 PUT /binary '' "$H_BIN" "$BIN_B64"
  web 4 GET /error '' "$H_GET" ""
  web 5 GET /malformed '' "$H_GET" ""
  web 6 GET /bad-header '' "$H_GET" ""
  web 7 GET /plain '' "$H_GET" ""
  direct 8 '{"n":8}'
} >"$TMP/openfaas.in"
session openfaas "$FIX/web-py-openfaas"
check openfaas 'auto: handler.handle(event, context) -> openfaas' 'loaded.ok && loaded.format === "openfaas"'
check openfaas 'status code' 'R(1).ok && H(1).status === 201'
check openfaas 'a response header' 'hdr(1, "x-fixture") === "openfaas"'
check openfaas 'content type (a dict body is JSON)' 'hdr(1, "content-type") === "application/json"'
check openfaas 'query parameters reach it (event.query, getlist); event.method, .path, .headers in any case; context.hostname' \
  'J(1).name === "Ada" && eq(J(1).tags, ["x", "y"]) && J(1).method === "GET" && J(1).path === "/" && J(1).userAgent === "formats-test/1.0" && typeof J(1).hostname === "string" && J(1).hostname.length > 0'
check openfaas 'a JSON body reaches it (event.body, bytes)' 'R(2).ok && J(2).method === "POST" && J(2).path === "/submit" && eq(J(2).json, {n: 41, who: "json body", name: "Body"})'
check openfaas 'a binary body in as base64 (event.body, bytes) and out as base64 (a bytes body)' \
  'H(3).status === 200 && hdr(3, "content-type") === "image/png" && hdr(3, "x-in-length") === String(BIN.length) && B(3).equals(REV)'
check openfaas 'every answer is a response: http only (no result)' '!("result" in R(1)) && !("result" in R(3)) && !("result" in R(7))'
check openfaas 'an error it raises: ok:false with the error, no http answer' \
  'R(4).ok === false && !("http" in R(4)) && R(4).error.startsWith("ZeroDivisionError: the openfaas fixture fails on purpose")'
check openfaas 'malformed: a statusCode that is not a status' 'R(5).ok === false && !("http" in R(5)) && R(5).error === process.env.BAD_STATUS'
check openfaas 'malformed: CR/LF in a header name' \
  'R(6).ok === false && R(6).error === "malformed response: header name \x27X-Bad\\r\\nX-Injected\x27 contains CR or LF"'
check openfaas 'any other value: a 200 with it as the body (a str is text/html)' \
  'H(7).status === 200 && hdr(7, "content-type") === "text/html; charset=utf-8" && T(7) === "plain text from GET"'
check openfaas 'a direct call: event.body is the params as JSON, method POST; the result what it returned' \
  'R(8).ok && !("http" in R(8)) && res(8).statusCode === 201 && eq(res(8).body.json, {n: 8}) && res(8).body.method === "POST" && res(8).body.path === "/"'

# ---------------------------------------------------------------- json (zfaas's own), found by auto
echo "json: main(params) (fixtures/web-py-json, format auto)"
{
  load "" null web-py-json
  web 1 POST /any 'name=Ada' "$H_JSON" "$JSON_BODY" '{"name":"Ada","n":41}'
  direct 2 '{"n":2}'
} >"$TMP/json.in"
session json "$FIX/web-py-json"
check json 'auto: main(params) -> json' 'loaded.ok && loaded.format === "json"'
check json 'a web call: the function gets the params the node made of the request; no http in the reply' \
  'R(1).ok && !("http" in R(1)) && eq(res(1), {format: "json", params: {name: "Ada", n: 41}})'
check json 'a direct call' 'R(2).ok && !("http" in R(2)) && eq(res(2), {format: "json", params: {n: 2}})'

# handler(event, context) stays json (today's contract), whatever auto could guess
{
  load "" null py-env
  web 1 GET / '' "$H_GET" "" '{}'
} >"$TMP/json-handler.in"
session json-handler "$FIX/py-env"
check json-handler 'auto: handler(event, context) stays json; a web call gets params, no http' \
  'loaded.format === "json" && R(1).ok && !("http" in R(1)) && res(1).call === "1" && res(1).remaining > 30000'

# ---------------------------------------------------------------- refusals and format changes
echo "refused formats and requests, reloading in another format (fixtures/web-py-openwhisk)"
{
  load '"gcf"' '"nowhere.main"' web-py-openwhisk
  direct 1 '{}'
  load '"soap"' null web-py-openwhisk
  load '"openwhisk"' null web-py-openwhisk
  printf '%s\n' '{"op":"call","id":2,"params":{},"env":{},"http":{"method":"GET","path":"/"}}'
  printf '%s\n' '{"op":"call","id":3,"params":{},"env":{},"http":{"method":"GET","path":"/","query":"","headers":{},"body":"%%%","sourceIp":"1.2.3.4"}}'
  web 4 GET / 'name=Ada' "$H_GET" ""
  load '"json"' null web-py-openwhisk
  web 5 GET / 'name=Ada' "$H_GET" "" '{"name":"Ada"}'
  load "" null web-py-openwhisk
} >"$TMP/refusals.in"
session refusals "$FIX/web-py-openwhisk"
check refusals 'a handler file that is not there: the load fails saying so' \
  'L[0].ok === false && L[0].error.startsWith("handler file nowhere.py not found")'
check refusals 'nothing is loaded after a refused load' 'R(1).ok === false && R(1).error === "no function loaded"'
check refusals 'an unknown format: an error reply' 'E[0].op === "error" && E[0].error.startsWith("load needs format: one of \"auto\", \"json\", \"lambda\"")'
check refusals 'http missing its fields: an error reply for that call' 'R(2).op === "error" && R(2).error.startsWith("call needs http:") && R(2).error.endsWith("(query is not a string)")'
check refusals 'http with a body that is not base64: an error reply for that call' 'R(3).op === "error" && R(3).error.endsWith("(body is not base64)")'
check refusals 'after them the function still answers' 'L[1].format === "openwhisk" && R(4).ok && H(4).status === 201 && J(4).name === "Ada"'
check refusals 'reloaded as json: a web call gets params and no http' 'L[2].format === "json" && R(5).ok && !("http" in R(5)) && res(5).direct === true'
check refusals 'auto on main(args): json (an openwhisk action needs its format named)' 'L[3].ok && L[3].format === "json"'

# ---------------------------------------------------------------- run-once mode: a direct call in the format
echo "run-once mode (loader.py --once)"
once_out="$(printf '%s' '{"n":5}' | docker run -i "${DOCKER_ARGS[@]}" -v "$FIX/web-py-openfaas":/ws:ro -w /ws "$IMAGE" python3 "$IN_IMAGE" --once 2>"$TMP/once.err")"
once_rc=$?
if [ $once_rc = 0 ] && ONCE="$once_out" node -e 'const v = JSON.parse(process.env.ONCE); if (v.statusCode !== 201 || v.body.json.n !== 5 || v.body.method !== "POST") process.exit(1)'; then
  ok "openfaas --once: handle(event, context) gets the params as its event's body"
else
  bad "openfaas --once: rc=$once_rc stdout=[$once_out]"; sed 's/^/       err: /' "$TMP/once.err" | tail -n 5
fi
once_out="$(printf '%s' '{"n":6}' | docker run -i "${DOCKER_ARGS[@]}" -v "$FIX/web-py-lambda":/ws:ro -w /ws "$IMAGE" python3 "$IN_IMAGE" --once 2>"$TMP/once.err")"
once_rc=$?
if [ $once_rc = 0 ] && ONCE="$once_out" node -e 'const v = JSON.parse(process.env.ONCE); if (v.direct !== true || v.n !== 6) process.exit(1)'; then
  ok "lambda --once: lambda_function.lambda_handler found, the params are its event"
else
  bad "lambda --once: rc=$once_rc stdout=[$once_out]"; sed 's/^/       err: /' "$TMP/once.err" | tail -n 5
fi
chmod -R a+rX "$FIX/ff-py-http" 2>/dev/null || true
once_out="$(printf '%s' '{"name":"Ada"}' | docker run -i "${DOCKER_ARGS[@]}" -v "$FIX/ff-py-http":/ws:ro -w /ws -e ZFAAS_FORMAT=gcf "$IMAGE" python3 "$IN_IMAGE" --once 2>"$TMP/once.err")"
once_rc=$?
if [ $once_rc = 0 ] && [ "$once_out" = 'Hello Ada!' ]; then ok "gcf --once: @functions_framework.http found, the params are a JSON POST to it"
else bad "gcf --once: rc=$once_rc stdout=[$once_out]"; sed 's/^/       err: /' "$TMP/once.err" | tail -n 5; fi

echo "formats-python: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
