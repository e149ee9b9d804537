#!/usr/bin/env bash
# Self-test of the runtime images and their loaders, under the container restrictions zfaas uses:
#   --network none --read-only --tmpfs /tmp --user 1000:1000, the function tree at /ws read-only.
# Checks the warm protocol (ping, load, two calls) and the run-once mode of each fixture in
# runtimes/fixtures (and the examples), plus the seed's dice archive with the seed's runtime.
# Needs: docker, node on the host (to check JSON). Usage: runtimes/test-loaders.sh [python|node ...]
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
FIX="$HERE/fixtures"
PY_IMAGE="${ZFAAS_PYTHON_IMAGE:-zfaas/python:latest}"
NODE_IMAGE="${ZFAAS_NODE_IMAGE:-zfaas/node:latest}"
TARGETS=("$@"); [ ${#TARGETS[@]} -gt 0 ] || TARGETS=(python node)
PASS=0; FAIL=0
TMP="$(mktemp -d "${TMPDIR:-/tmp}/zfaas-loader-test.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

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
  docker run --rm -i --label zfaas.test=loaders --network none --read-only --tmpfs /tmp --user 1000:1000 \
    -v "$dir":/ws:ro -w /ws "${extra[@]}" "$image" "$@"
}

# proto NAME IMAGE LOADER... DIR HANDLER(json) PARAMS1 PARAMS2 CHECK(js over r = parsed lines)
proto() {
  local name="$1" image="$2" loader="$3" dir="$4" handler="$5" p1="$6" p2="$7" check="$8"
  local out="$TMP/$name.out" err="$TMP/$name.err"
  # shellcheck disable=SC2086
  printf '%s\n' '{"op":"ping"}' "{\"op\":\"load\",\"dir\":\"/ws\",\"handler\":$handler}" \
    "{\"op\":\"call\",\"id\":1,\"params\":$p1}" "{\"op\":\"call\",\"id\":2,\"params\":$p2}" \
    | drun "$image" "$dir" -- $loader >"$out" 2>"$err"
  local rc=$?
  if CHECK="$check" node -e '
      const fs = require("fs");
      const lines = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean);
      const r = lines.map((l) => JSON.parse(l));
      const res = (i) => JSON.parse(r[i].result);
      if (r.length !== 4) throw new Error("expected 4 lines, got " + r.length);
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
    if docker run --rm --label zfaas.test=loaders --network none --read-only --tmpfs /tmp --user 1000:1000 -v "$D":/ws -w /ws pythonruntime \
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
