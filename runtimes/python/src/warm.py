# Warm mode: the loader protocol over the node's unix socket or stdin/stdout, one request at a time (or, after
# a load with concurrency > 1, several calls at once: concurrent.py).
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


# Setting a call's variables must not grow the process: CPython's os.environ calls setenv, and the C library
# keeps every value setenv was ever given (it cannot know who still reads the old one). putenv instead points
# the environment at a buffer its caller owns: _set_env keeps each variable's buffer until a later value
# replaces it, and the one before for one call longer, for a thread that may still be reading it.
# A process the call starts inherits the variables as before; os.environ shows them as before.
_ENVIRON = os.environ  # the process's own mapping (concurrent.py may later put a view in its place)
_HELD = {}  # name -> (the buffer the environment points at, the one before it)
try:
    _PUTENV = ctypes.CDLL(None, use_errno=True).putenv
except (OSError, AttributeError):  # no C library to ask: os.environ's own way
    _PUTENV = None


def took_since(t0):
    """A result's `took`: whole microseconds since the call was read (the node compares it with its round trip)."""
    return max(0, int(round((time.perf_counter() - t0) * 1e6)))


def _set_env(k, v):
    """os.environ[k] = v, without the C library keeping a copy of v for the life of the process."""
    if _PUTENV is None:
        _ENVIRON[k] = v
        return
    kb, vb = _ENVIRON.encodekey(k), _ENVIRON.encodevalue(v)
    buf = ctypes.create_string_buffer(kb + b"=" + vb)
    if _PUTENV(buf) != 0:
        raise ValueError("putenv refused %s: %s" % (k, os.strerror(ctypes.get_errno())))
    _HELD[k] = (buf, _HELD.get(k, (None, None))[0])
    _ENVIRON._data[kb] = vb


def _unset_env(k):
    """del os.environ[k] (if set); a buffer it pointed at is kept one call longer."""
    if k in _ENVIRON:
        del _ENVIRON[k]
    if k in _HELD:
        _HELD[k] = (None, _HELD[k][0])


def _restore_env(saved):
    for k, v in reversed(saved):
        if v is None:
            _unset_env(k)
        else:
            _set_env(k, v)


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
    lock = threading.Lock()  # calls that run at once answer from their own threads

    def send(msg):
        # UTF-8 as it is (ensure_ascii=False keeps a reply at most 4 bytes a character, not 12); a lone
        # surrogate is written as its JSON escape
        data = json.dumps(msg, separators=(",", ":"), ensure_ascii=False) + "\n"
        data = data.encode("utf-8", "backslashreplace")
        try:
            with lock:
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
    session = _Session(send, refuse, capture)
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
        session.answer(msg)
    _wait_calls()


class _Session:
    """The loaded function (none until a load succeeds) and the answer to each kind of request."""

    def __init__(self, send, refuse, capture):
        self.send, self.refuse, self.capture = send, refuse, capture
        self.fn = None
        self.arity = 1
        self.fmt = "json"
        self.kind = None  # gcf's form: "http" or "cloudevent" (registered with the Functions Framework)
        self.concurrency = 1  # calls that may run at once (a load's `concurrency`)

    def answer(self, msg):
        op = msg.get("op")
        if op == "call":
            self.call(msg)
        elif op == "ping":
            self.send({"op": "pong"})
        elif op == "secrets":
            self.secrets(msg)
        elif op == "load":
            self.load(msg)
        elif op == "cancel":
            _cancel_call(self, msg)
        else:
            if op is None:
                what = "no op"
            elif isinstance(op, str):
                what = "unknown op " + json.dumps(op[:40] + "..." if len(op) > 40 else op)
            else:
                what = "op of type " + type(op).__name__
            self.refuse('%s: expected "load", "call", "cancel", "secrets" or "ping"' % what, msg.get("id"))

    def call(self, msg):
        t0 = time.perf_counter()
        call_id = _int(msg.get("id"))
        if call_id is None or call_id < 1:
            return self.refuse("call needs id: a positive integer", call_id)
        env = msg.get("env", {})
        if not _is_env(env):
            return self.refuse("call needs env: " + ENV_EXPECTED, call_id)
        if self.fn is None:
            return self.send({"op": "result", "id": call_id, "ok": False, "error": "no function loaded", "logs": "", "took": took_since(t0)})
        web = None
        if self.fmt != "json":  # a json function ignores `http`: its params hold the request
            web = msg.get("http")
            if web is not None:
                try:
                    web = WebRequest(web)
                except ValueError as e:
                    return self.refuse("call needs http: %s (%s)" % (HTTP_EXPECTED, e), call_id)
        if self.concurrency > 1:
            return _call_beside(self, call_id, env, msg.get("params"), web, t0)
        saved = []
        try:
            for k, v in env.items():
                saved.append((k, os.environ.get(k)))
                _set_env(k, v)
        except (ValueError, UnicodeError) as e:
            _restore_env(saved)
            return self.refuse("call needs env: %s (%s)" % (ENV_EXPECTED, e), call_id)
        params = msg.get("params")
        params_json = json.dumps(params, separators=(",", ":"))
        _set_env("ZFAAS_PARAMS", params_json)
        sys.stdin = io.StringIO(params_json)
        self.capture.start()
        st = open_stream(self.send, call_id) if web is not None else None  # a web call may stream (stream.py)
        try:
            reply = self._run(call_id, params, web)
            if st is not None:
                reply = close_stream(st, reply)
        finally:
            sys.stdout = self.capture
            sys.stderr = self.capture
            sys.stdin = io.StringIO("")
            logs = self.capture.stop()
            _restore_env(saved)
        reply["logs"] = logs
        stray = stray_processes()
        if stray:
            reply["stray"] = stray
        reply["took"] = took_since(t0)
        self.send(reply)

    def _run(self, call_id, params, web):
        """The function run with the call's params (or web request): the reply, but for its logs."""
        fn, arity, fmt, kind = self.fn, self.arity, self.fmt, self.kind
        try:
            if web is None:
                if fmt == "json":
                    result = to_result(invoke(fn, arity, params, call_id))
                else:
                    result = to_result(direct_call(fmt, fn, arity, params, call_id, kind))
                reply = {"op": "result", "id": call_id, "ok": True, "result": result}
            else:
                # a response comes back as `http` only; a plain value also as `result`
                value, (status, headers, body, plain) = web_call(fmt, fn, arity, web, call_id, kind)
                result = web_result(value) if plain else None
                reply = {"op": "result", "id": call_id, "ok": True}
                if plain:
                    reply["result"] = result
                reply["http"] = http_reply(status, headers, body)
                del value, body
            if result is not None and len(result) > RESULT_LIMIT:
                reply["result"] = result[:RESULT_LIMIT]
                reply["truncated"] = True
            return reply
        except ReplyError as e:
            return {"op": "result", "id": call_id, "ok": False, "error": str(e), "fault": "response"}
        except BaseException as e:  # noqa: BLE001
            if isinstance(e, KeyboardInterrupt):
                raise
            if _exit_error(e):
                return {"op": "result", "id": call_id, "ok": False, "error": format_error(e)}
            return {"op": "result", "id": call_id, "ok": True, "result": ""}

    def secrets(self, msg):
        bad = _secrets_problem(msg)
        if bad:
            return self.refuse("secrets needs " + bad)
        try:
            _write_secrets(msg["dir"], msg["files"], msg["keep"])
            self.send({"op": "secretsSet", "ok": True})
        except OSError as e:  # names a file, never a value
            self.send({"op": "secretsSet", "ok": False, "error": str(e)[:1000]})

    def load(self, msg):
        directory, handler, env = msg.get("dir"), msg.get("handler", 0), msg.get("env")
        if type(directory) is not str:
            return self.refuse("load needs dir: a string")
        if handler is not None and type(handler) is not str:
            return self.refuse("load needs handler: a string or null")
        if not _is_env(env):
            return self.refuse("load needs env: " + ENV_EXPECTED)
        wanted = msg.get("format")
        if wanted is None:
            wanted = "auto"
        elif wanted not in FORMATS:
            return self.refuse("load needs format: one of %s (or none: auto)" % FORMATS_TEXT)
        n = msg.get("concurrency")
        n = 1 if n is None else _int(n)
        if n is None or n < 1:
            return self.refuse("load needs concurrency: a positive integer")
        try:
            _set_env("ZFAAS_PARAMS", "{}")
            # a stem cell learns its function (and its environment) only when given one
            for k, v in env.items():
                _set_env(k, v)
            fn, name, kind = load_function(directory or "/ws", handler)
            self.fn = fn
            self.arity = _arity(fn)
            self.fmt = choose_format(wanted, name, self.arity, kind)
            self.kind = kind
            if n > 1:
                _enter_concurrent(self, n)
            self.concurrency = n
            self.send({"op": "loaded", "ok": True, "format": self.fmt})
        except _Hangup:
            raise
        except BaseException as e:  # noqa: BLE001
            if isinstance(e, KeyboardInterrupt):
                raise
            self.fn = None
            self.send({"op": "loaded", "ok": False, "error": str(e) if isinstance(e, NoHandler) else format_error(e)})
