#!/usr/bin/env python3
"""zfaas python loader: keeps a function warm inside its container.

Warm mode (default): JSON lines on stdin, JSON lines on stdout, one message a line.
  {"op":"load","dir":"/ws","handler":null|"file.export","env":{}?} -> {"op":"loaded","ok":true}
                                                          | {"op":"loaded","ok":false,"error":"..."}
  {"op":"call","id":N,"params":<json>}  -> {"op":"result","id":N,"ok":true,"result":"<str>","logs":"..."}
                                         | {"op":"result","id":N,"ok":false,"error":"...","logs":"..."}
    A result longer than RESULT_LIMIT characters is cut there and the reply says "truncated":true;
    a call that leaves processes running in the container says how many in "stray":N.
  {"op":"ping"}                         -> {"op":"pong"}
  anything else                         -> {"op":"error","error":"...","id":<id if any>}
Everything the function prints while a call runs is captured into "logs"; it never reaches the
protocol stream (fd 1 is re-pointed to stderr, the protocol uses a private duplicate of it).

Run-once mode (`loader.py --once`, the `none` policy): the function dir is $ZFAAS_DIR or the cwd,
the handler is $ZFAAS_HANDLER if set; params are all of stdin (else $ZFAAS_PARAMS, else {}).
Prints the result string to stdout (no newline added) and exits 0; the function's own output goes
to stderr; an exception prints the traceback to stderr and exits 1; no handler file exits 2.

Entry: handler "FILE.EXPORT" (last dot separates, FILE may hold slashes) -> FILE.py, attribute EXPORT;
otherwise handler.py, else main.py, with a function named handler or main.
No third-party dependencies; Python 3.11.
"""
import asyncio
import importlib.util
import inspect
import io
import json
import os
import sys
import traceback

LOG_LIMIT = 64 * 1024
RESULT_LIMIT = 6 * 1024 * 1024  # as the per-call path keeps (common/docker.ts)
ERR_LIMIT = 8 * 1024
LOADER_FILE = os.path.abspath(__file__)


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

    def get_remaining_time_in_millis(self):
        try:
            return int(float(os.environ.get("ZFAAS_TIMEOUT", "30")) * 1000)
        except ValueError:
            return 30000


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


def invoke(fn, params, call_id):
    global _loop
    n = _arity(fn)
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


def stray_processes():
    """Processes in this container other than init (pid 1) and this loader: what a call left running."""
    try:
        me = str(os.getpid())
        return sum(1 for n in os.listdir("/proc") if n.isdigit() and n != "1" and n != me)
    except OSError:
        return 0


# ---------------------------------------------------------------- warm mode

def serve():
    # private copies of the real stdin/stdout for the protocol; fd 0 <- /dev/null, fd 1 -> stderr
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    # UTF-8 as it is (ensure_ascii=False keeps a reply at most 4 bytes a character, not 12); a lone
    # surrogate is written as its JSON escape
    proto_out = os.fdopen(os.dup(1), "w", encoding="utf-8", errors="backslashreplace", buffering=1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    real_stderr = sys.__stderr__
    capture = Capture(real_stderr)
    sys.stdout = capture
    sys.stderr = capture
    sys.stdin = io.StringIO("")
    reader = io.BufferedReader(proto_in, buffer_size=65536)

    def send(msg):
        proto_out.write(json.dumps(msg, separators=(",", ":"), ensure_ascii=False) + "\n")
        proto_out.flush()

    fn = None
    while True:
        line = reader.readline()
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
            send({"op": "error", "error": "bad message: %s" % e})
            continue
        op = msg.get("op")
        if op == "ping":
            send({"op": "pong"})
        elif op == "load":
            try:
                os.environ["ZFAAS_PARAMS"] = "{}"
                # a stem cell learns its function (and its environment) only when given one
                for k, v in (msg.get("env") or {}).items():
                    os.environ[str(k)] = str(v)
                fn = load_function(msg.get("dir") or "/ws", msg.get("handler"))
                send({"op": "loaded", "ok": True})
            except BaseException as e:  # noqa: BLE001
                if isinstance(e, KeyboardInterrupt):
                    raise
                fn = None
                send({"op": "loaded", "ok": False,
                      "error": str(e) if isinstance(e, NoHandler) else format_error(e)})
        elif op == "call":
            call_id = msg.get("id")
            if fn is None:
                send({"op": "result", "id": call_id, "ok": False,
                      "error": "no function loaded", "logs": ""})
                continue
            params = msg.get("params")
            params_json = json.dumps(params, separators=(",", ":"))
            os.environ["ZFAAS_PARAMS"] = params_json
            sys.stdin = io.StringIO(params_json)
            capture.start()
            try:
                result = to_result(invoke(fn, params, call_id))
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
            stray = stray_processes()
            if stray:
                reply["stray"] = stray
            send(reply)
        else:
            reply = {"op": "error", "error": "unknown op %r" % (op,)}
            if "id" in msg:
                reply["id"] = msg["id"]
            send(reply)


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
        result = to_result(invoke(fn, params, 1))
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
