#!/usr/bin/env bash
# Self-test of the runtime images and their loaders, under the container restrictions zfaas uses:
#   --network none --read-only --tmpfs /tmp --user 1000:1000, the function tree at /ws read-only.
# Checks the warm protocol (protocol/loader.ts: hello, ping, load, two calls) on stdin/stdout and the
# run-once mode of each fixture in runtimes/fixtures (and the examples); a call's own `env` and requests
# the loader must refuse; the socket transport (ZFAAS_LINE: a unix socket served by node on the host, its
# folder mounted read-only at /run/zfaas), timing LOADER_TEST_CALLS calls over it (default 200); plus the
# seed's dice archive with the seed's runtime.
# Needs: docker, node on the host (to check JSON). Usage: runtimes/test-loaders.sh [python|node ...]
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# the protocol version the loaders must say in hello (generated from protocol/loader.ts)
export ZFAAS_PROTOCOL_JSON="$HERE/loader-protocol.json"
ROOT="$(cd "$HERE/.." && pwd)"
FIX="$HERE/fixtures"
PY_IMAGE="${ZFAAS_PYTHON_IMAGE:-zfaas/python:latest}"
NODE_IMAGE="${ZFAAS_NODE_IMAGE:-zfaas/node:latest}"
TARGETS=("$@"); [ ${#TARGETS[@]} -gt 0 ] || TARGETS=(python node)
CALLS="${LOADER_TEST_CALLS:-200}"
PASS=0; FAIL=0
TMP="$(mktemp -d "${TMPDIR:-/tmp}/zfaas-loader-test.XXXXXX")"
RUN="$(basename "$TMP")" # labels this run's containers: cleanup leaves other runs alone
DOCKER_ARGS=(--rm --label zfaas.test=loaders --label "zfaas.test.run=$RUN" --network none --read-only --tmpfs /tmp --user 1000:1000)
cleanup() {
  local ids; ids="$(docker ps -aq --filter "label=zfaas.test.run=$RUN" 2>/dev/null)"
  # shellcheck disable=SC2086
  [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

command -v node >/dev/null 2>&1 || { echo "test-loaders: node is needed on the host" >&2; exit 1; }
for img in "$PY_IMAGE" "$NODE_IMAGE"; do
  docker image inspect "$img" >/dev/null 2>&1 || { echo "test-loaders: image $img missing (run runtimes/build-images.sh)" >&2; exit 1; }
done

ok()  { PASS=$((PASS + 1)); echo "  ok   $*"; }
bad() { FAIL=$((FAIL + 1)); echo "  FAIL $*"; }

# the fixtures must be readable by uid 1000 (a fresh clone may have a restrictive umask)
chmod -R a+rX "$FIX" "$ROOT/examples" "$HERE/python/dice" 2>/dev/null || true

drun() { # drun IMAGE DIR [docker args...] -- CMD...
  local image="$1" dir="$2"; shift 2
  local extra=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do extra+=("$1"); shift; done
  shift
  docker run -i "${DOCKER_ARGS[@]}" -v "$dir":/ws:ro -w /ws "${extra[@]}" "$image" "$@"
}

# proto NAME IMAGE LOADER... DIR HANDLER(json) PARAMS1 PARAMS2 CHECK(js over r = parsed lines after hello)
#       [ENV1 ENV2 (the calls' env) [LOADENV]]
proto() {
  local name="$1" image="$2" loader="$3" dir="$4" handler="$5" p1="$6" p2="$7" check="$8"
  local e1='{"ZFAAS_CALL":"1"}' e2='{"ZFAAS_CALL":"2"}' le='{}'
  [ $# -lt 9 ] || e1="$9"; [ $# -lt 10 ] || e2="${10}"; [ $# -lt 11 ] || le="${11}"
  local out="$TMP/$name.out" err="$TMP/$name.err"
  # shellcheck disable=SC2086
  printf '%s\n' '{"op":"ping"}' "{\"op\":\"load\",\"dir\":\"/ws\",\"handler\":$handler,\"env\":$le}" \
    "{\"op\":\"call\",\"id\":1,\"params\":$p1,\"env\":$e1}" "{\"op\":\"call\",\"id\":2,\"params\":$p2,\"env\":$e2}" \
    | drun "$image" "$dir" -- $loader >"$out" 2>"$err"
  local rc=$?
  if CHECK="$check" node -e '
      const fs = require("fs");
      const lines = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean);
      const r = lines.map((l) => JSON.parse(l));
      const res = (i) => JSON.parse(r[i].result);
      if (r.length !== 5) throw new Error("expected 5 lines, got " + r.length);
      const hello = r.shift();
      if (hello.op !== "hello" || hello.v !== require(process.env.ZFAAS_PROTOCOL_JSON).version || !Number.isInteger(hello.pid)) throw new Error("no hello first");
      if (r[0].op !== "pong") throw new Error("no pong");
      if (r[2].op !== "result" || r[2].id !== 1 || r[3].op !== "result" || r[3].id !== 2) throw new Error("bad result ids");
      if (!eval(process.env.CHECK)) throw new Error("check failed: " + process.env.CHECK);
    ' "$out" 2>"$TMP/$name.check" && [ $rc -eq 0 ]; then
    ok "$name (warm protocol)"
  else
    bad "$name (warm protocol, rc=$rc): $(cat "$TMP/$name.check" | grep -m1 Error)"
    sed 's/^/       out: /' "$out"; sed 's/^/       err: /' "$err" | tail -n 5
  fi
}

# once NAME IMAGE LOADER DIR STDIN EXPECT_RC EXPECT_STDOUT(exact, or ~regex) STDERR_SUBSTRING [docker args]
once() {
  local name="$1" image="$2" loader="$3" dir="$4" input="$5" erc="$6" eout="$7" eerr="$8"; shift 8
  local out="$TMP/$name.once.out" err="$TMP/$name.once.err"
  # shellcheck disable=SC2086
  printf '%s' "$input" | drun "$image" "$dir" "$@" -- $loader >"$out" 2>"$err"
  local rc=$? got; got="$(cat "$out")"
  local good=1
  [ "$rc" = "$erc" ] || good=0
  if [ "${eout:0:1}" = "~" ]; then [[ "$got" =~ ${eout:1} ]] || good=0; else [ "$got" = "$eout" ] || good=0; fi
  [ -z "$eerr" ] || grep -qF -- "$eerr" "$err" || good=0
  if [ $good = 1 ]; then ok "$name (once)"; else
    bad "$name (once): rc=$rc (want $erc) stdout=[$got] (want [$eout])"; sed 's/^/       err: /' "$err" | tail -n 5
  fi
}

# refuse NAME IMAGE LOADER DIR: requests the loader must refuse with {"op":"error"} (and carry on), then a
# call with no env. DIR holds an env fixture (its result: {"call": $ZFAAS_CALL or null, ...}).
refuse() {
  local name="$1" image="$2" loader="$3" dir="$4"
  local out="$TMP/$name.refuse.out" err="$TMP/$name.refuse.err"
  # shellcheck disable=SC2086
  printf '%s\n' '{"op":"load","dir":"/ws","handler":null,"env":{}}' \
    '{"op":"call","id":5,"params":{},"env":{"ZFAAS_CALL":7}}' \
    '{"op":"call","id":0,"params":{},"env":{}}' \
    '{"op":"call","id":"x","params":{},"env":{}}' \
    '{"op":"load","dir":"/ws","handler":null}' \
    '{"op":"frob","id":9}' \
    'not json' \
    '{"op":"call","id":6,"params":{}}' \
    | drun "$image" "$dir" -- $loader >"$out" 2>"$err"
  local rc=$?
  if node -e '
      const fs = require("fs");
      const r = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
      if (r.length !== 9) throw new Error("expected 9 lines, got " + r.length);
      if (r[0].op !== "hello" || r[1].op !== "loaded" || !r[1].ok) throw new Error("no hello, loaded");
      const ids = [5, 0, undefined, undefined, 9, undefined];
      ids.forEach((id, i) => {
        const e = r[2 + i];
        if (e.op !== "error" || typeof e.error !== "string" || !e.error || e.id !== id) throw new Error("request " + (i + 2) + ": " + JSON.stringify(e));
      });
      if (!/call needs env/.test(r[2].error) || !/load needs env/.test(r[5].error)) throw new Error("errors do not say what was expected");
      if (r[8].op !== "result" || r[8].id !== 6 || !r[8].ok || JSON.parse(r[8].result).call !== null) throw new Error("no result after the errors: " + JSON.stringify(r[8]));
    ' "$out" 2>"$TMP/$name.refuse.check" && [ $rc -eq 0 ]; then
    ok "$name (malformed requests: error replies)"
  else
    bad "$name (malformed requests, rc=$rc): $(grep -m1 Error "$TMP/$name.refuse.check")"
    sed 's/^/       out: /' "$out"; sed 's/^/       err: /' "$err" | tail -n 5
  fi
}

# The node's side of the socket transport, in miniature: node line-server.js SOCKDIR CALLS CMD...
# Starts CMD (a docker run of the loader), listens on SOCKDIR/line.sock a moment later (the loader has to
# retry), then speaks over the connection: hello, load, two calls with their env, a bad request, ping,
# CALLS calls one at a time (timed), and hangs up; the loader must then exit 0 with nothing on stdout.
cat >"$TMP/line-server.js" <<'JS'
'use strict';
const fs = require('fs');
const net = require('net');
const path = require('path');
const { spawn } = require('child_process');
const [dir, callsArg, cmd, ...args] = process.argv.slice(2);
const calls = Number(callsArg);
const file = path.join(dir, 'line.sock');
const out = [];
const err = [];
const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
child.stdout.on('data', (d) => out.push(d));
child.stderr.on('data', (d) => err.push(d));
const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
let done = false;
const finish = (error, summary) => {
  if (done) return;
  done = true;
  if (error) {
    console.log(`FAIL ${error}`);
    for (const l of Buffer.concat(err).toString().split('\n').slice(-6)) if (l) console.log(`  loader stderr: ${l}`);
    process.exit(1);
  }
  console.log(summary);
  process.exit(0);
};
setTimeout(() => finish('timed out'), 60_000).unref();

const deadline = Date.now() + 60_000;
const steps = [
  [null, (m) => m.op === 'hello' && m.v === require(process.env.ZFAAS_PROTOCOL_JSON).version && Number.isInteger(m.pid)],
  [{ op: 'load', dir: '/ws', handler: null, env: { GREETING: 'hi' } }, (m) => m.op === 'loaded' && m.ok === true],
  [
    { op: 'call', id: 1, params: { a: 1 }, env: { ZFAAS_CALL: '17', ZFAAS_REPLICA: '0', ZFAAS_DEADLINE: String(deadline), GREETING: 'per-call' } },
    (m, v = JSON.parse(m.result)) =>
      m.id === 1 && m.ok && v.call === '17' && v.greeting === 'per-call' && v.line === null && v.remaining > 30_000 && v.remaining <= 60_000 && m.logs === 'call 17\n',
  ],
  [{ op: 'call', id: 2, params: {}, env: {} }, (m, v = JSON.parse(m.result)) => m.id === 2 && m.ok && v.call === null && v.greeting === 'hi' && (m.logs === 'call None\n' || m.logs === 'call undefined\n')],
  [{ op: 'call', id: 3, params: {}, env: ['x'] }, (m) => m.op === 'error' && m.id === 3],
  [{ op: 'ping' }, (m) => m.op === 'pong'],
];
for (let i = 1; i <= calls; i++) {
  const id = 100 + i;
  steps.push([{ op: 'call', id, params: { i }, env: { ZFAAS_CALL: String(i) } }, (m) => m.op === 'result' && m.id === id && m.ok && JSON.parse(m.result).call === String(i)]);
}
const timed = 6; // the steps from here on are timed

let hungUp = false;
const server = net.createServer((sock) => {
  server.close(); // one loader, one connection
  let step = 0;
  let t0 = 0;
  const next = () => {
    if (step === timed) t0 = process.hrtime.bigint();
    if (step === steps.length) {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      hungUp = true;
      sock.end();
      exited.then((code) => {
        const stdout = Buffer.concat(out).toString();
        const stderr = Buffer.concat(err).toString();
        if (code !== 0) return finish(`the loader exited ${code} when the node hung up`);
        if (stdout) return finish(`the loader wrote to its stdout: ${JSON.stringify(stdout.slice(0, 200))}`);
        if (!stderr.includes('loading')) return finish('what the function printed outside a call is not on stderr');
        finish(null, `${calls} calls in ${ms.toFixed(0)} ms, ${Math.round((calls * 1000) / ms)} calls/s`);
      });
      return;
    }
    if (steps[step][0]) sock.write(JSON.stringify(steps[step][0]) + '\n');
  };
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (chunk) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let m;
      try {
        m = JSON.parse(line);
      } catch (_) {
        return finish(`not JSON: ${line.slice(0, 200)}`);
      }
      const [req, check] = steps[step] || [];
      let good = false;
      try {
        good = !!check && check(m);
      } catch (_) {}
      if (!good) return finish(`step ${step} ${JSON.stringify(req)}: unexpected ${line.slice(0, 300)}`);
      step++;
      next();
    }
  });
  sock.on('error', (e) => finish(`socket: ${e.message}`));
});
exited.then((code) => hungUp || finish(`the loader exited ${code} before the end`));
setTimeout(() => {
  const mask = process.umask(0);
  server.listen(file, () => {
    process.umask(mask);
    fs.chmodSync(file, 0o666);
  });
}, 1500);
JS

# line NAME IMAGE LOADER DIR: the socket transport, as a node runs it (DIR holds an env fixture).
line() {
  local name="$1" image="$2" loader="$3" dir="$4"
  local sd="$TMP/$name.line" out="$TMP/$name.line.out"
  mkdir -p "$sd" && chmod 755 "$sd"
  # shellcheck disable=SC2086
  if node "$TMP/line-server.js" "$sd" "$CALLS" docker run "${DOCKER_ARGS[@]}" -v "$dir":/ws:ro -w /ws \
      -v "$sd":/run/zfaas:ro -e ZFAAS_LINE=/run/zfaas/line.sock "$image" $loader >"$out" 2>&1; then
    ok "$name (socket: $(tail -n 1 "$out"))"
  else
    bad "$name (socket): $(head -n 1 "$out")"; tail -n +2 "$out"
  fi
}

# line_gone NAME IMAGE LOADER DIR: ZFAAS_LINE names a socket nobody listens on: retry ~5 s, then exit 1.
line_gone() {
  local name="$1" image="$2" loader="$3" dir="$4"
  local sd="$TMP/$name.nobody" err="$TMP/$name.nobody.err"
  mkdir -p "$sd" && chmod 755 "$sd"
  local t0; t0="$(date +%s.%N)"
  # shellcheck disable=SC2086
  docker run "${DOCKER_ARGS[@]}" -v "$dir":/ws:ro -w /ws -v "$sd":/run/zfaas:ro -e ZFAAS_LINE=/run/zfaas/line.sock \
    "$image" $loader >/dev/null 2>"$err" </dev/null
  local rc=$? took; took="$(awk -v s="$t0" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}')"
  if [ $rc = 1 ] && grep -q 'cannot connect to ZFAAS_LINE=/run/zfaas/line.sock' "$err" && awk -v t="$took" 'BEGIN{exit !(t >= 4.5 && t < 20)}'; then
    ok "$name (socket nobody listens on: exit 1 after $took s)"
  else
    bad "$name (socket nobody listens on): rc=$rc after $took s"; sed 's/^/       err: /' "$err" | tail -n 5
  fi
}

T0=$(date +%s.%N)
for t in "${TARGETS[@]}"; do
  case "$t" in
  python)
    echo "python ($PY_IMAGE)"
    L="python3 /opt/zfaas/loader.py"
    proto py-handler "$PY_IMAGE" "$L" "$FIX/py-handler" null '{"n":3}' '{"n":4}' \
      'res(2).double === 6 && res(3).double === 8 && r[1].ok && r[2].logs === "hello from handler 3\nto stderr\n" && r[3].logs.includes("hello from handler 4")'
    proto py-main "$PY_IMAGE" "$L" "$FIX/py-main" null '{"xs":[1,2]}' '{"xs":[5]}' \
      'r[2].result === "sum=3" && r[3].result === "sum=5" && r[3].logs.includes("env params: {\"xs\":[5]}")'
    proto py-throw "$PY_IMAGE" "$L" "$FIX/py-throw" null '{"why":"x"}' '{}' \
      'r[1].ok && r[2].ok === false && r[2].error.startsWith("ValueError: boom: x") && r[2].error.includes("handler.py\", line 7, in inner") && !r[2].error.includes("loader.py") && r[2].logs === "about to fail\n" && r[3].error.includes("boom: no reason")'
    proto py-spec "$PY_IMAGE" "$L" "$FIX/py-spec" '"sub/mod.fn"' '{"x":1}' '{"x":2}' \
      'r[2].result === "spec:1:1" && r[3].result === "spec:2:2"'
    proto py-none "$PY_IMAGE" "$L" "$FIX/py-none" null '{}' '{}' \
      'r[1].ok === false && /no handler found/.test(r[1].error) && r[2].ok === false && r[2].error === "no function loaded"'
    proto hello-python "$PY_IMAGE" "$L" "$ROOT/examples/hello-python" null '{"name":"zfaas"}' '{}' \
      'r[2].result === "{\"hello\":\"zfaas\"}" && r[3].result === "{\"hello\":\"world\"}" && r[2].logs === ""'
    # a call's env is there for that call only (GREETING from the load comes back); ZFAAS_DEADLINE is the context's
    proto py-env "$PY_IMAGE" "$L" "$FIX/py-env" null '{}' '{}' \
      'res(2).call === "17" && res(2).greeting === "per-call" && res(2).remaining > 30000 && res(2).remaining <= 60000 && r[2].logs === "call 17\n" && res(3).call === null && res(3).greeting === "hi" && res(3).remaining > 20000 && res(3).remaining <= 30000' \
      "{\"ZFAAS_CALL\":\"17\",\"GREETING\":\"per-call\",\"ZFAAS_DEADLINE\":\"$(($(date +%s%3N) + 60000))\"}" '{}' '{"GREETING":"hi"}'
    refuse py-env "$PY_IMAGE" "$L" "$FIX/py-env"
    line py-env "$PY_IMAGE" "$L" "$FIX/py-env"
    line_gone py-env "$PY_IMAGE" "$L" "$FIX/py-env"
    L="python3 /opt/zfaas/loader.py --once"
    once py-handler "$PY_IMAGE" "$L" "$FIX/py-handler" '{"n":5}' 0 '{"ok":true,"n":5,"double":10}' 'hello from handler 5'
    once py-main-env "$PY_IMAGE" "$L" "$FIX/py-main" '' 0 'sum=7' '' -e 'ZFAAS_PARAMS={"xs":[3,4]}'
    once py-main-empty "$PY_IMAGE" "$L" "$FIX/py-main" '' 0 'sum=0' ''
    once py-throw "$PY_IMAGE" "$L" "$FIX/py-throw" '{"why":"y"}' 1 '' 'ValueError: boom: y'
    once py-spec "$PY_IMAGE" "$L" "$FIX/py-spec" '{"x":9}' 0 'spec:9:1' '' -e ZFAAS_HANDLER=sub/mod.fn
    once py-none "$PY_IMAGE" "$L" "$FIX/py-none" '{}' 2 '' 'no handler found'
    once py-badjson "$PY_IMAGE" "$L" "$FIX/py-main" '{nope' 1 '' 'not valid JSON'
    # the seed's runtime: {"image":"pythonruntime","dependencies":"pip3 install -r requirements.txt","run":"python3 test.py"}
    D="$TMP/dice"; mkdir -p "$D"; tar -C "$D" -xzf "$HERE/python/dice/python.tar.gz"; chmod -R a+rwX "$D"
    if [ -f "$D/test.py" ] && [ -f "$D/requirements.txt" ] && [ "$(tar -tzf "$HERE/python/dice/python.tar.gz" | sort | tr '\n' ' ')" = "requirements.txt test.py " ]; then
      ok "dice archive holds test.py and requirements.txt at its root"; else bad "dice archive layout"; fi
    if docker run "${DOCKER_ARGS[@]}" -v "$D":/ws -w /ws pythonruntime \
         sh -c 'pip3 install -r requirements.txt' >"$TMP/dice.pip" 2>&1; then ok "dice: seed's pip3 install -r requirements.txt offline"
    else bad "dice: pip3 install"; tail -n 5 "$TMP/dice.pip"; fi
    once dice "pythonruntime" "python3 test.py" "$D" '{"roll":"4d6"}' 0 '~^\[[1-6],[1-6],[1-6],[1-6]\]$' ''
    once dice-env "pythonruntime" "python3 test.py" "$D" '' 0 '~^\[[0-9]+,[0-9]+\]$' '' -e 'ZFAAS_PARAMS={"roll":"2d20"}'
    once dice-bad "pythonruntime" "python3 test.py" "$D" '{"roll":"many"}' 1 '' 'bad roll'
    ;;
  node)
    echo "node ($NODE_IMAGE)"
    L="node /opt/zfaas/loader.js"
    proto node-async "$NODE_IMAGE" "$L" "$FIX/node-async" null '{"n":3}' '{"n":4}' \
      'res(2).double === 6 && res(3).double === 8 && res(3).env === 4 && r[2].logs === "hello from node 3\nto stderr\nraw write\n"'
    proto node-throw "$NODE_IMAGE" "$L" "$FIX/node-throw" null '{"why":"x"}' '{}' \
      'r[1].ok && r[2].ok === false && r[2].error.startsWith("Error: boom: x") && r[2].error.includes("index.js:3") && !r[2].error.includes("loader.js") && r[2].logs === "about to fail\n" && r[3].error.includes("boom: no reason")'
    proto node-esm "$NODE_IMAGE" "$L" "$FIX/node-esm" '"lib/entry.run"' '{"x":1}' '{"x":2}' \
      'r[2].result === "esm:1" && r[3].result === "esm:2" && r[2].logs === "esm run\n"'
    proto node-none "$NODE_IMAGE" "$L" "$FIX/node-none" null '{}' '{}' \
      'r[1].ok === false && /no handler found/.test(r[1].error) && r[2].error === "no function loaded"'
    proto hello-node "$NODE_IMAGE" "$L" "$ROOT/examples/hello-node" null '{"name":"zfaas"}' '{}' \
      'r[2].result === "{\"hello\":\"zfaas\"}" && r[3].result === "{\"hello\":\"world\"}"'
    proto node-env "$NODE_IMAGE" "$L" "$FIX/node-env" null '{}' '{}' \
      'res(2).call === "17" && res(2).greeting === "per-call" && res(2).remaining > 30000 && res(2).remaining <= 60000 && r[2].logs === "call 17\n" && res(3).call === null && res(3).greeting === "hi" && res(3).remaining > 20000 && res(3).remaining <= 30000' \
      "{\"ZFAAS_CALL\":\"17\",\"GREETING\":\"per-call\",\"ZFAAS_DEADLINE\":\"$(($(date +%s%3N) + 60000))\"}" '{}' '{"GREETING":"hi"}'
    refuse node-env "$NODE_IMAGE" "$L" "$FIX/node-env"
    line node-env "$NODE_IMAGE" "$L" "$FIX/node-env"
    line_gone node-env "$NODE_IMAGE" "$L" "$FIX/node-env"
    L="node /opt/zfaas/loader.js --once"
    once node-async "$NODE_IMAGE" "$L" "$FIX/node-async" '{"n":5}' 0 '{"ok":true,"n":5,"double":10,"env":5}' 'hello from node 5'
    once node-env "$NODE_IMAGE" "$L" "$FIX/node-async" '' 0 '{"ok":true,"n":6,"double":12,"env":6}' '' -e 'ZFAAS_PARAMS={"n":6}'
    once node-throw "$NODE_IMAGE" "$L" "$FIX/node-throw" '{"why":"y"}' 1 '' 'Error: boom: y'
    once node-esm "$NODE_IMAGE" "$L" "$FIX/node-esm" '{"x":7}' 0 'esm:7' '' -e ZFAAS_HANDLER=lib/entry.run
    once node-none "$NODE_IMAGE" "$L" "$FIX/node-none" '{}' 2 '' 'no handler found'
    once hello-node "$NODE_IMAGE" "$L" "$ROOT/examples/hello-node" '{"name":"a"}' 0 '{"hello":"a"}' ''
    ;;
  *) echo "test-loaders: unknown runtime $t" >&2; exit 64 ;;
  esac
done
echo "test-loaders: $PASS passed, $FAIL failed ($(awk -v s="$T0" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f s", e-s}'))"
[ "$FAIL" = 0 ]
