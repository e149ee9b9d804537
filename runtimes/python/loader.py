#!/usr/bin/env python3
"""zfaas python loader: keeps a function warm inside its container. No third-party dependencies; Python 3.11.

Warm mode (default) speaks the loader protocol, version 1: protocol/loader.ts is the spec (messages,
limits, transport). In short: with $ZFAAS_LINE set it dials that unix socket (retrying for up to 5 s,
then exit 1) and exits 0 when the connection ends; without it, it speaks on stdin/stdout and exits 0 at
the end of stdin. Either way it says {"op":"hello","v":1,"pid":N} first, then answers load, call and ping
one at a time; a request it cannot read gets {"op":"error"} and it carries on. A call's `env` is set in
os.environ for that call only. Everything the function prints while a call runs is captured into "logs";
outside a call it goes to stderr; it never reaches the protocol (fd 1 is re-pointed to stderr, and on
stdin/stdout the protocol uses private duplicates of them).

Run-once mode (`loader.py --once`, the `none` policy): the function dir is $ZFAAS_DIR or the cwd,
the handler is $ZFAAS_HANDLER if set; params are all of stdin (else $ZFAAS_PARAMS, else {}).
Prints the result string to stdout (no newline added) and exits 0; the function's own output goes
to stderr; an exception prints the traceback to stderr and exits 1; no handler file exits 2.

Entry: handler "FILE.EXPORT" (last dot separates, FILE may hold slashes) -> FILE.py, attribute EXPORT;
otherwise handler.py, else main.py, with a function named handler or main. Handlers taking two
arguments get a Lambda-like context (get_remaining_time_in_millis counts down to $ZFAAS_DEADLINE, else
to $ZFAAS_TIMEOUT seconds after the call started).
"""
import asyncio
import importlib.util
import inspect
import io
import json
import os
import re
import socket
import sys
import time
import traceback

# as protocol/loader.ts has them (LOADER_PROTOCOL, LOG_LIMIT, RESULT_LIMIT, LINE_ENV)
PROTOCOL = 1
LOG_LIMIT = 64 * 1024
RESULT_LIMIT = 6 * 1024 * 1024
LINE_ENV = "ZFAAS_LINE"  # the node's unix socket, when it has one
CONNECT_FOR = 5.0  # seconds to keep dialing it
ERR_LIMIT = 8 * 1024
LOADER_FILE = os.path.abspath(__file__)
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class NoHandler(Exception):
    """No handler file or function was found."""


class Capture(io.TextIOBase):
    """A text stream that collects a call's output (bounded, keeps the end) or, between calls,
    forwards to a fallback stream."""

    def __init__(self, fallback):
        super().__init__()
        self._fallback = fallback
        self._chunks = []
        self._size = 0
        self._dropped = 0
        self.collecting = False

    def start(self):
        self._chunks, self._size, self._dropped = [], 0, 0
        self.collecting = True

    def stop(self):
        self.collecting = False
        text = "".join(self._chunks)
        dropped = self._dropped
        if len(text) > LOG_LIMIT:
            dropped += len(text) - LOG_LIMIT
            text = text[-LOG_LIMIT:]
        self._chunks, self._size, self._dropped = [], 0, 0
        if dropped:
            text = "[... %d characters of logs truncated ...]\n" % dropped + text
        return text

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        if not self.collecting:
            try:
                self._fallback.write(s)
                self._fallback.flush()
            except Exception:
                pass
            return len(s)
        self._chunks.append(s)
        self._size += len(s)
        if self._size > 2 * LOG_LIMIT:
            text = "".join(self._chunks)
            self._dropped += len(text) - LOG_LIMIT
            text = text[-LOG_LIMIT:]
            self._chunks, self._size = [text], len(text)
        return len(s)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass

    def writable(self):
        return True

    def readable(self):
        return False

    def isatty(self):
        return False

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "replace"


class Context:
    """A minimal AWS-Lambda-like context for handlers that take (event, context)."""

    def __init__(self, call_id):
        self.aws_request_id = str(call_id)
        self.request_id = str(call_id)
        self.function_name = os.environ.get("ZFAAS_FUNCTION", "")
        self.function_version = os.environ.get("ZFAAS_FUNCTION_VERSION", "")
        self.memory_limit_in_mb = os.environ.get("ZFAAS_MEMORY", "")
        # read now: a call's own variables (ZFAAS_DEADLINE, epoch ms) are gone once it returns
        try:
            self._end = float(os.environ.get("ZFAAS_DEADLINE") or 0) / 1000
        except ValueError:
            self._end = 0
        if not self._end > 0:
            try:
                self._end = time.time() + float(os.environ.get("ZFAAS_TIMEOUT") or 30)
            except ValueError:
                self._end = time.time() + 30

    def get_remaining_time_in_millis(self):
        return max(0, int((self._end - time.time()) * 1000))


# ---------------------------------------------------------------- loading

def _import_file(path, modname):
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:
        raise ImportError("cannot import %s" % path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(modname, None)
        raise
    return module


def load_function(directory, handler):
    """Returns the callable. Raises NoHandler when no entry file/function exists."""
    directory = os.path.abspath(directory or ".")
    if not os.path.isdir(directory):
        raise NoHandler("function directory %s does not exist" % directory)
    os.chdir(directory)
    for p in (directory, os.path.join(directory, ".deps")):
        if p in sys.path:
            sys.path.remove(p)
    sys.path.insert(0, directory)
    deps = os.path.join(directory, ".deps")
    if os.path.isdir(deps):
        sys.path.insert(0, deps)
    importlib.invalidate_caches()

    if handler:
        handler = handler.strip()
        if "." not in handler:
            raise NoHandler("handler %r is not of the form FILE.EXPORT" % handler)
        file_part, export = handler.rsplit(".", 1)
        rel = file_part[:-3] if file_part.endswith(".py") else file_part
        path = os.path.join(directory, rel + ".py")
        if not os.path.isfile(path):
            raise NoHandler("handler file %s.py not found in %s" % (rel, directory))
        module = _import_file(path, rel.strip("/").replace("/", ".") or "handler")
        fn = getattr(module, export, None)
        if not callable(fn):
            raise NoHandler("%s.py has no function %r" % (rel, export))
        return fn

    for name in ("handler", "main"):
        path = os.path.join(directory, name + ".py")
        if os.path.isfile(path):
            module = _import_file(path, name)
            for attr in ("handler", "main"):
                fn = getattr(module, attr, None)
                if callable(fn):
                    return fn
            raise NoHandler("%s.py defines no function handler(event) or main(params)" % name)
    raise NoHandler("no handler found in %s: expected handler.py or main.py with handler(event) "
                    "or main(params), or a handler setting FILE.EXPORT" % directory)


def _arity(fn):
    """How many positional arguments to pass (0, 1 or 2), from the signature."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return 1
    positional = 0
    for p in sig.parameters.values():
        if p.kind == p.VAR_POSITIONAL:
            return 1
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            positional += 1
    if positional == 0:
        return 0
    required = sum(1 for p in sig.parameters.values()
                   if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty)
    return 2 if required >= 2 else 1


_loop = None


def invoke(fn, n, params, call_id):
    """Calls fn with n (its _arity) arguments."""
    global _loop
    if n == 0:
        value = fn()
    elif n == 1:
        value = fn(params)
    else:
        value = fn(params, Context(call_id))
    if inspect.isawaitable(value):
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            asyncio.set_event_loop(_loop)
        value = _loop.run_until_complete(value)
    return value


def to_result(value):
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def format_error(exc):
    tb = exc.__traceback__
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) == LOADER_FILE:
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    head = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    if len(text) > ERR_LIMIT:
        text = "...\n" + text[-ERR_LIMIT:]
    return head + "\n" + text.rstrip()


def _exit_error(exc):
    """SystemExit(0|None) from a handler is a normal end, anything else an error."""
    return not (isinstance(exc, SystemExit) and exc.code in (0, None))


_SELF = str(os.getpid())


def stray_processes():
    """Processes in this container other than init (pid 1) and this loader: what a call left running.
    One listdir of /proc (its pid entries are the only ones starting with a digit)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return 0
    return sum(1 for n in names if "0" <= n[0] <= "9" and n != "1" and n != _SELF)


# ---------------------------------------------------------------- warm mode

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
                result = to_result(invoke(fn, arity, params, call_id))
                reply = {"op": "result", "id": call_id, "ok": True, "result": result}
                if len(result) > RESULT_LIMIT:
                    reply["result"] = result[:RESULT_LIMIT]
                    reply["truncated"] = True
                del result
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
            try:
                os.environ["ZFAAS_PARAMS"] = "{}"
                # a stem cell learns its function (and its environment) only when given one
                for k, v in env.items():
                    os.environ[k] = v
                fn = load_function(directory or "/ws", handler)
                arity = _arity(fn)
                send({"op": "loaded", "ok": True})
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
            refuse('%s: expected "load", "call" or "ping"' % what, msg.get("id"))


# ---------------------------------------------------------------- run-once mode

def once():
    out_fd = os.dup(1)
    os.dup2(2, 1)  # the function's prints (even from C code / subprocesses) go to stderr
    sys.stdout = sys.stderr
    raw = ""
    try:
        raw = sys.stdin.read()
    except Exception:  # noqa: BLE001
        raw = ""
    if not raw.strip():
        raw = os.environ.get("ZFAAS_PARAMS", "").strip() or "{}"
    try:
        params = json.loads(raw)
    except ValueError as e:
        sys.stderr.write("zfaas: params are not valid JSON: %s\n" % e)
        sys.stderr.flush()
        return 1
    os.environ["ZFAAS_PARAMS"] = json.dumps(params, separators=(",", ":"))
    sys.stdin = io.StringIO(os.environ["ZFAAS_PARAMS"])
    try:
        fn = load_function(os.environ.get("ZFAAS_DIR") or os.getcwd(), os.environ.get("ZFAAS_HANDLER") or None)
    except NoHandler as e:
        sys.stderr.write("zfaas: %s\n" % e)
        sys.stderr.flush()
        return 2
    except BaseException as e:  # noqa: BLE001
        if not _exit_error(e):
            return 0
        sys.stderr.write(format_error(e) + "\n")
        sys.stderr.flush()
        return 1
    try:
        result = to_result(invoke(fn, _arity(fn), params, 1))
    except BaseException as e:  # noqa: BLE001
        if not _exit_error(e):
            return 0
        sys.stderr.write(format_error(e) + "\n")
        sys.stderr.flush()
        return 1
    # the platform keeps the first 6 MiB of a result: one byte more tells it there was more
    data = result[:RESULT_LIMIT + 1].encode("utf-8", "replace")[:RESULT_LIMIT + 1]
    del result
    while data:
        n = os.write(out_fd, data)
        data = data[n:]
    return 0


if __name__ == "__main__":
    if "--once" in sys.argv[1:]:
        code = once()
        try:
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
        os._exit(code)
    serve()
