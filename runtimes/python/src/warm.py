# Warm mode: the loader protocol over the node's unix socket or stdin/stdout, one request at a time.
class _Hangup(Exception):
    """The other end of the protocol is gone."""


def _is_env(env):
    """A request's env: an object of strings named like environment variables (no NUL: setenv cannot
    hold it)."""
    if type(env) is not dict:
        return False
    for k, v in env.items():
        if type(v) is not str or "\x00" in v or not ENV_NAME.match(k):
            return False
    return True


def _restore_env(saved):
    for k, v in reversed(saved):
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _int(x):
    """x as an integer if it is one as JSON means it (2.0 is 2), else None."""
    if type(x) is int:
        return x
    if type(x) is float and x.is_integer():
        return int(x)
    return None


def _dial(path):
    """Connects to the node's unix socket, retrying for CONNECT_FOR seconds; cannot: a line on stderr,
    exit 1."""
    until = time.monotonic() + CONNECT_FOR
    wait = 0.01
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except OSError as e:
            sock.close()
            if time.monotonic() + wait > until:
                sys.stderr.write("zfaas loader: cannot connect to %s=%s (tried for %g s): %s\n"
                                 % (LINE_ENV, path, CONNECT_FOR, e))
                sys.stderr.flush()
                sys.exit(1)
            time.sleep(wait)
            wait = min(2 * wait, 0.25)


def serve():
    line_path = os.environ.pop(LINE_ENV, None)  # the function sees the variables a cold run sees
    sock = None
    if line_path:
        sock = _dial(line_path)
        reader = sock.makefile("rb", buffering=65536)
        write = sock.sendall
    else:
        # private copies of the real stdin/stdout for the protocol
        reader = io.BufferedReader(io.FileIO(os.dup(0), "rb"), buffer_size=65536)
        proto_out = io.BufferedWriter(io.FileIO(os.dup(1), "wb"), buffer_size=65536)

        def write(data):
            proto_out.write(data)
            proto_out.flush()
    # fd 0 <- /dev/null, fd 1 -> stderr: what the function (or a program it runs) prints never reaches
    # the protocol
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    capture = Capture(sys.__stderr__)
    sys.stdout = capture
    sys.stderr = capture
    sys.stdin = io.StringIO("")

    def send(msg):
        # UTF-8 as it is (ensure_ascii=False keeps a reply at most 4 bytes a character, not 12); a lone
        # surrogate is written as its JSON escape
        data = json.dumps(msg, separators=(",", ":"), ensure_ascii=False) + "\n"
        data = data.encode("utf-8", "backslashreplace")
        try:
            write(data)
        except OSError:
            raise _Hangup() from None

    def refuse(error, request_id=None):
        reply = {"op": "error", "error": error}
        request_id = _int(request_id)
        if request_id is not None:
            reply["id"] = request_id
        send(reply)

    try:
        send({"op": "hello", "v": PROTOCOL, "pid": os.getpid()})
        _speak(reader, send, refuse, capture)
    except _Hangup:
        pass
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()


ENV_EXPECTED = "an object of strings named [A-Za-z_][A-Za-z0-9_]*"


def _speak(reader, send, refuse, capture):
    """One request at a time, each answered in order, until the input ends."""
    fn = None
    arity = 1
    fmt = "json"
    while True:
        try:
            line = reader.readline()
        except OSError:
            break
        if not line:
            break
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
            if not isinstance(msg, dict):
                raise ValueError("message is not an object")
        except Exception as e:  # noqa: BLE001
            refuse("bad message: %s: expected a JSON object" % str(e)[:200])
            continue
        op = msg.get("op")
        if op == "call":
            call_id = _int(msg.get("id"))
            if call_id is None or call_id < 1:
                refuse("call needs id: a positive integer", call_id)
                continue
            env = msg.get("env", {})
            if not _is_env(env):
                refuse("call needs env: " + ENV_EXPECTED, call_id)
                continue
            if fn is None:
                send({"op": "result", "id": call_id, "ok": False,
                      "error": "no function loaded", "logs": ""})
                continue
            web = None
            if fmt != "json":  # a json function ignores `http`: its params hold the request
                web = msg.get("http")
                if web is not None:
                    try:
                        web = WebRequest(web)
                    except ValueError as e:
                        refuse("call needs http: %s (%s)" % (HTTP_EXPECTED, e), call_id)
                        continue
            saved = []
            try:
                for k, v in env.items():
                    saved.append((k, os.environ.get(k)))
                    os.environ[k] = v
            except (ValueError, UnicodeError) as e:
                _restore_env(saved)
                refuse("call needs env: %s (%s)" % (ENV_EXPECTED, e), call_id)
                continue
            params = msg.get("params")
            params_json = json.dumps(params, separators=(",", ":"))
            os.environ["ZFAAS_PARAMS"] = params_json
            sys.stdin = io.StringIO(params_json)
            capture.start()
            try:
                if web is None:
                    if fmt == "json":
                        result = to_result(invoke(fn, arity, params, call_id))
                    else:
                        result = to_result(direct_call(fmt, fn, arity, params, call_id))
                    reply = {"op": "result", "id": call_id, "ok": True, "result": result}
                else:
                    # a response comes back as `http` only; a plain value also as `result`
                    value, (status, headers, body, plain) = web_call(fmt, fn, arity, web, call_id)
                    result = web_result(value) if plain else None
                    reply = {"op": "result", "id": call_id, "ok": True}
                    if plain:
                        reply["result"] = result
                    reply["http"] = http_reply(status, headers, body)
                    del value, body
                if result is not None and len(result) > RESULT_LIMIT:
                    reply["result"] = result[:RESULT_LIMIT]
                    reply["truncated"] = True
                del result
            except ReplyError as e:
                reply = {"op": "result", "id": call_id, "ok": False, "error": str(e), "fault": "response"}
            except BaseException as e:  # noqa: BLE001
                if isinstance(e, KeyboardInterrupt):
                    raise
                if _exit_error(e):
                    reply = {"op": "result", "id": call_id, "ok": False, "error": format_error(e)}
                else:
                    reply = {"op": "result", "id": call_id, "ok": True, "result": ""}
            finally:
                sys.stdout = capture
                sys.stderr = capture
                sys.stdin = io.StringIO("")
                reply["logs"] = capture.stop()
                _restore_env(saved)
            stray = stray_processes()
            if stray:
                reply["stray"] = stray
            send(reply)
        elif op == "ping":
            send({"op": "pong"})
        elif op == "secrets":
            bad = _secrets_problem(msg)
            if bad:
                refuse("secrets needs " + bad)
                continue
            try:
                _write_secrets(msg["dir"], msg["files"], msg["keep"])
                send({"op": "secretsSet", "ok": True})
            except OSError as e:  # names a file, never a value
                send({"op": "secretsSet", "ok": False, "error": str(e)[:1000]})
        elif op == "load":
            directory, handler, env = msg.get("dir"), msg.get("handler", 0), msg.get("env")
            if type(directory) is not str:
                refuse("load needs dir: a string")
                continue
            if handler is not None and type(handler) is not str:
                refuse("load needs handler: a string or null")
                continue
            if not _is_env(env):
                refuse("load needs env: " + ENV_EXPECTED)
                continue
            wanted = msg.get("format")
            if wanted is None:
                wanted = "auto"
            elif wanted not in FORMATS:
                refuse("load needs format: one of %s (or none: auto)" % FORMATS_TEXT)
                continue
            if wanted == "gcf":
                fn = None
                send({"op": "loaded", "ok": False, "error": GCF_REFUSED})
                continue
            try:
                os.environ["ZFAAS_PARAMS"] = "{}"
                # a stem cell learns its function (and its environment) only when given one
                for k, v in env.items():
                    os.environ[k] = v
                fn, name = load_function(directory or "/ws", handler)
                arity = _arity(fn)
                fmt = choose_format(wanted, name, arity)
                send({"op": "loaded", "ok": True, "format": fmt})
            except _Hangup:
                raise
            except BaseException as e:  # noqa: BLE001
                if isinstance(e, KeyboardInterrupt):
                    raise
                fn = None
                send({"op": "loaded", "ok": False,
                      "error": str(e) if isinstance(e, NoHandler) else format_error(e)})
        else:
            if op is None:
                what = "no op"
            elif isinstance(op, str):
                what = "unknown op " + json.dumps(op[:40] + "..." if len(op) > 40 else op)
            else:
                what = "op of type " + type(op).__name__
            refuse('%s: expected "load", "call", "secrets" or "ping"' % what, msg.get("id"))
