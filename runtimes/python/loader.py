#!/usr/bin/env python3
"""zfaas python loader: keeps a function warm inside its container. No third-party dependencies; Python 3.11.
Built from the modules in runtimes/python/src by `npm run loaders` (runtimes/build/loaders.ts): edit those,
not the built runtimes/python/loader.py.

Warm mode (default) speaks the loader protocol (version PROTOCOL): protocol/loader.ts is the spec (messages,
limits, transport). In short: with $ZFAAS_LINE set it dials that unix socket (retrying for up to 5 s,
then exit 1) and exits 0 when the connection ends; without it, it speaks on stdin/stdout and exits 0 at
the end of stdin. Either way it says {"op":"hello","v":PROTOCOL,"pid":N} first, then answers load, call, secrets
and ping one at a time; a request it cannot read gets {"op":"error"} and it carries on. A call's `env` is set in
os.environ for that call only. After a load with concurrency N > 1 (version 3) calls run at once on N threads,
coroutines on one shared asyncio loop, each in its own contextvars context (os.environ becomes a view of its own
variables over the shared ones; its output goes to its own logs), and `cancel` {id} answers one running call
cancelled. Everything the function prints while a call runs is captured into "logs";
outside a call it goes to stderr; it never reaches the protocol (fd 1 is re-pointed to stderr, and on
stdin/stdout the protocol uses private duplicates of them).

Run-once mode (`loader.py --once`, the `none` policy): the function dir is $ZFAAS_DIR or the cwd,
the handler is $ZFAAS_HANDLER if set; params are all of stdin (else $ZFAAS_PARAMS, else {}).
Prints the result string to stdout (no newline added) and exits 0; the function's own output goes
to stderr; an exception prints the traceback to stderr and exits 1; no handler file exits 2.

Entry: handler "FILE.EXPORT" (last dot separates, FILE may hold slashes) -> FILE.py, attribute EXPORT;
otherwise handler.py, else main.py, else lambda_function.py (AWS's default), with a function named
handler, main, lambda_handler or handle. Handlers taking two arguments get a Lambda-like context
(get_remaining_time_in_millis counts down to $ZFAAS_DEADLINE, else to $ZFAAS_TIMEOUT seconds after the
call started).

Google's Functions Framework: `import functions_framework` finds the archive's own copy, else a stand-in
offering @functions_framework.http and @functions_framework.cloud_event; a function registered with them is
found by its name (the handler's, $FUNCTION_TARGET, the only one registered, or the deployed function's).

Formats (protocol/loader.ts, "Web calls"): `load` may name the function's calling convention, `format`
(json, lambda, lambda-v1, openwhisk, openfaas, gcf; auto or missing: told from the entry where that is
unambiguous: registered with the Functions Framework -> gcf, lambda_handler -> lambda, handle(event,
context) -> openfaas, anything else json), and `loaded` says which it chose. gcf: an HTTP function gets a
Flask request (Flask's own with the real framework vendored, else one that reads the same) and answers
what a Flask view returns; a CloudEvent function gets a CloudEvent, from a call's params (structured mode)
or a web request (ce-* headers, or a JSON body), and a web caller gets "OK". A call carrying `http` (a web request) is
given to the function in its platform's shape and answered with `http` {status, headers, body (base64)}:
the response the function chose, or, for a plain value where its platform makes one (lambda 2.0,
openwhisk), a 200 of the value as JSON with the value also as `result`. A json function ignores `http`
(its params already hold the request). A response the function shaped wrongly fails the call
("malformed response: ..."), as does a body over RESULT_LIMIT bytes ("response too large: ...").
Without `http` (a direct call) every format gets the params, as its platform's direct invoke does
(openfaas: an event whose body is the params as JSON), and answers the value as `result`. Run-once mode
takes the format from $ZFAAS_FORMAT (default auto) and makes a direct call.
"""
import asyncio
import base64
import binascii
import ctypes
import importlib.util
import inspect
import io
import json
import os
import re
import shutil
import socket
import sys
import threading
import time
import traceback
import types
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, unquote

# ---- generated from protocol/loader.ts by runtimes/build/loaders.ts: do not edit
PROTOCOL = 5
LOG_LIMIT = 65536
RESULT_LIMIT = 6291456
STREAM_CHUNK_LIMIT = 262144
STREAM_LIMIT = 67108864
CANCELLED = "cancelled"  # a cancelled call's error
LINE_ENV = "ZFAAS_LINE"  # the node's unix socket, when it has one
FORMATS = ("auto", "json", "lambda", "lambda-v1", "openwhisk", "openfaas", "gcf")
ENV_NAME = re.compile("(?:[A-Za-z_][A-Za-z0-9_]*)\\Z")
TOKEN = re.compile("(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+)\\Z")
SECRET_NAME = re.compile("(?:[A-Za-z0-9][A-Za-z0-9._-]{0,63})\\Z")
BASE64 = re.compile("(?:[A-Za-z0-9+/]*={0,2})\\Z")

# ---- python/src/base.py
# The loader's own settings and the error it raises when no handler is found.
CONNECT_FOR = 5.0  # seconds to keep dialing it
ERR_LIMIT = 8 * 1024
LOADER_FILE = os.path.abspath(__file__)
ACCOUNT_ID = "000000000000"  # what the lambda formats say for an AWS account


class NoHandler(Exception):
    """No handler file or function was found."""

# ---- python/src/capture.py
# Output capture: what a function prints during a call goes into the call's `logs` (bounded, keeping the
# end); outside a call it goes to stderr; never to the protocol.
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

# ---- python/src/context.py
# The Lambda-like context a two-argument handler gets.
class Context:
    """An AWS-Lambda-like context for handlers that take (event, context). What is cheap is set, the rest
    is worked out only when asked for (a json call makes one for every call)."""

    identity = None
    client_context = None

    def __init__(self, call_id):
        self.aws_request_id = os.environ.get("ZFAAS_CALL") or str(call_id)
        self.request_id = self.aws_request_id
        self.function_name = os.environ.get("ZFAAS_FUNCTION", "")
        self.function_version = os.environ.get("ZFAAS_FUNCTION_VERSION") or "$LATEST"
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

    @property
    def invoked_function_arn(self):
        return "arn:aws:lambda:zfaas:%s:function:%s" % (ACCOUNT_ID, self.function_name)

    @property
    def log_group_name(self):
        return "/aws/lambda/" + self.function_name

    @property
    def log_stream_name(self):
        return "%s/[%s]%s" % (time.strftime("%Y/%m/%d", time.gmtime()), self.function_version,
                              os.environ.get("HOSTNAME", "zfaas"))

    def get_remaining_time_in_millis(self):
        return max(0, int((self._end - time.time()) * 1000))

# ---- python/src/framework.py
# Google's Functions Framework: @functions_framework.http and @functions_framework.cloud_event mark a function by
# its name when its module loads. An archive that vendors the real package registers in that package's
# registry (functions_framework._function_registry.REGISTRY_MAP), read after the load; one that does not gets
# a stand-in module of that name offering the two decorators (and nothing else), so Google's samples load.
FF_MODULE = "functions_framework"
FF_KINDS = ("http", "cloudevent")
_ff_registry = {}  # function name -> "http" | "cloudevent", what the stand-in was told


def _ff_decorator(kind):
    def register(func):
        name = getattr(func, "__name__", None)
        if not callable(func) or not isinstance(name, str):
            raise TypeError("@functions_framework.%s decorates a function, got %r"
                            % ("http" if kind == "http" else "cloud_event", func))
        _ff_registry[name] = kind
        return func

    return register


def ff_install():
    """Lets `import functions_framework` find the stand-in, unless the function's path holds the package."""
    if FF_MODULE in sys.modules:
        return
    try:
        vendored = importlib.util.find_spec(FF_MODULE) is not None
    except (ImportError, ValueError):
        vendored = False
    if vendored:
        return
    module = types.ModuleType(FF_MODULE, "zfaas's stand-in for the Functions Framework: registration only")
    module.http = _ff_decorator("http")
    module.cloud_event = _ff_decorator("cloudevent")
    module.__zfaas_stand_in__ = True
    sys.modules[FF_MODULE] = module


def ff_vendored():
    """Whether the function runs with the real package (and so with Flask and cloudevents, its dependencies)."""
    module = sys.modules.get(FF_MODULE)
    return module is not None and not getattr(module, "__zfaas_stand_in__", False)


def ff_registrations():
    """Function name -> kind of every function registered so far, by either registry."""
    if not ff_vendored():
        return dict(_ff_registry)
    registry = getattr(sys.modules.get(FF_MODULE + "._function_registry"), "REGISTRY_MAP", None)
    if not isinstance(registry, dict):
        return {}
    return {k: v for k, v in registry.items() if v in FF_KINDS}


def ff_pick(module, registered):
    """(name, kind) of the registered function a module loaded without a name means: the only one it
    holds, else the one named as the function is deployed (what gcloud takes for the entry point)."""
    mine = [n for n in registered if callable(getattr(module, n, None))]
    if len(mine) == 1:
        return mine[0], registered[mine[0]]
    own = os.environ.get("ZFAAS_FUNCTION", "")
    if own in mine:
        return own, registered[own]
    return None, None

# ---- python/src/load.py
# Loading a function (its file and entry) and calling it: its value or error as a reply.
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


ENTRY_FILES = ("handler", "main", "lambda_function")
ENTRY_NAMES = ("handler", "main", "lambda_handler", "handle")


def load_function(directory, handler):
    """Returns (the callable, the name it was found under, its Functions Framework kind: "http",
    "cloudevent" or None when it was not registered). Raises NoHandler when no entry file/function exists."""
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
    ff_install()

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
        return fn, export, ff_registrations().get(export)

    for name in ENTRY_FILES:
        path = os.path.join(directory, name + ".py")
        if os.path.isfile(path):
            module = _import_file(path, name)
            registered = ff_registrations()
            # the Functions Framework's way of naming the entry point
            target = os.environ.get("FUNCTION_TARGET")
            if target:
                fn = getattr(module, target, None)
                if not callable(fn):
                    raise NoHandler("%s.py has no function %r (FUNCTION_TARGET)" % (name, target))
                return fn, target, registered.get(target)
            attr, kind = ff_pick(module, registered)
            if attr:
                return getattr(module, attr), attr, kind
            for attr in ENTRY_NAMES:
                fn = getattr(module, attr, None)
                if callable(fn):
                    return fn, attr, registered.get(attr)
            raise NoHandler("%s.py defines no function handler(event), main(params), "
                            "lambda_handler(event, context) or handle(event, context), and registers none "
                            "with @functions_framework.http or @functions_framework.cloud_event" % name)
    raise NoHandler("no handler found in %s: expected handler.py, main.py or lambda_function.py with "
                    "handler(event), main(params), lambda_handler(event, context) or handle(event, context), "
                    "or a handler setting FILE.EXPORT" % directory)


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


def invoke(fn, n, params, call_id, context=None):
    """Calls fn with n (its _arity) arguments: params and, for two, context (else a Lambda-like one)."""
    global _loop
    if n == 0:
        value = fn()
    elif n == 1:
        value = fn(params)
    else:
        value = fn(params, Context(call_id) if context is None else context)
    if inspect.isawaitable(value):
        if _shared_loop is not None:  # calls run at once (concurrent.py): on their shared loop
            return _await_shared(value)
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

# ---- python/src/formats/http.py
# What every web format shares: the request a web call carries, and the checks of the response a function
# shaped (status, header names and values, base64).
# protocol/loader.ts, "Web calls": a function's calling convention (its format), the request a web call
# carries (`http`, body base64) and the response it answers with (`http`: status, headers, body base64).

FORMATS_TEXT = ", ".join('"%s"' % f for f in FORMATS)
HTTP_EXPECTED = "an object {method, path, query, headers, body, sourceIp} of strings, headers an object of strings"
TEXT_HINTS = ("json", "xml", "javascript", "x-www-form-urlencoded")
API_ID = "zfaas"  # what the lambda formats say for an API Gateway API id
HTML = "text/html; charset=utf-8"
JSON_TYPE = "application/json"


def choose_format(fmt, name, n, kind=None):
    """The format a function is called in: fmt unless it is auto; auto decides only where the entry is
    unambiguous (registered with the Functions Framework -> gcf, lambda_handler -> lambda, handle(event,
    context) -> openfaas), else json."""
    if fmt != "auto":
        return fmt
    if kind:
        return "gcf"
    if name == "lambda_handler":
        return "lambda"
    if name == "handle" and n == 2:
        return "openfaas"
    return "json"


class ReplyError(Exception):
    """A web answer the loader cannot give: the call fails with this message (no traceback), and its
    result says `fault: "response"` (a web caller gets 502, not 500)."""


class Malformed(ReplyError):
    """A web answer the function shaped wrongly: the call fails saying what is wrong."""

    def __init__(self, what):
        super().__init__("malformed response: " + what)


def _show(v):
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


class WebRequest:
    """A call's `http`, checked, its body decoded."""

    __slots__ = ("method", "path", "query", "headers", "body", "source_ip")

    def __init__(self, h):
        if type(h) is not dict:
            raise ValueError("got " + type(h).__name__)
        for key in ("method", "path", "query", "body", "sourceIp"):
            if type(h.get(key)) is not str:
                raise ValueError("%s is not a string" % key)
        headers = h.get("headers")
        if type(headers) is not dict or any(type(v) is not str for v in headers.values()):
            raise ValueError("headers is not an object of strings")
        try:
            self.body = base64.b64decode(h["body"], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("body is not base64") from None
        self.method = h["method"]
        self.path = h["path"] or "/"
        self.query = h["query"]
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.source_ip = h["sourceIp"]


def _mime(content_type):
    return content_type.split(";", 1)[0].strip().lower() if content_type else ""


def _textual(content_type):
    """A text content type (text/*, json, xml, javascript, form data), as opposed to a binary one."""
    mime = _mime(content_type)
    return mime.startswith("text/") or any(h in mime for h in TEXT_HINTS)


def _body_text(body, content_type):
    """A request body as the platforms put it in an event: (text, False) for a textual content type and
    valid UTF-8, else (base64, True)."""
    if not body:
        return "", False
    if _textual(content_type):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def _unbase64(text, what):
    try:
        return base64.b64decode(re.sub(r"\s+", "", text), validate=True)
    except (binascii.Error, ValueError):
        raise Malformed(what) from None


def _json_bytes(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8", "replace")


def _text_bytes(text):
    return text.encode("utf-8", "replace")


def _host(headers):
    host = headers.get("host", "")
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.split(":", 1)[0]


def _status(value, field="statusCode"):
    if type(value) is int and 100 <= value <= 599:
        return value
    raise Malformed("%s must be an integer from 100 to 599, got %s" % (field, _show(value)))


def _add_header(out, name, value):
    """Adds a header the function chose to out (lower-case name -> list of values), checking it."""
    if type(name) is not str or not name:
        raise Malformed("a header name must be a non-empty string, got %s" % _show(name))
    if "\r" in name or "\n" in name:
        raise Malformed("header name %s contains CR or LF" % _show(name))
    if not TOKEN.match(name):
        raise Malformed("header name %s is not an HTTP token" % _show(name))
    values = []
    for v in (value if type(value) in (list, tuple) else (value,)):
        if type(v) is int:
            v = str(v)
        elif type(v) is not str:
            raise Malformed("header %s must be a string, an integer or a list of them, got %s"
                            % (_show(name), _show(value)))
        if "\r" in v or "\n" in v:
            raise Malformed("header %s has a value containing CR or LF: %s" % (_show(name), _show(v)))
        values.append(v)
    if values:
        out.setdefault(name.lower(), []).extend(values)


def _add_headers(out, headers, field="headers", pairs=False):
    if headers is None:
        return
    if isinstance(headers, dict):
        items = headers.items()
    elif pairs and type(headers) in (list, tuple):
        items = []
        for pair in headers:
            if type(pair) not in (list, tuple) or len(pair) != 2:
                raise Malformed("%s must be an object or a list of (name, value) pairs, got %s"
                                % (field, _show(pair)))
            items.append(pair)
    else:
        raise Malformed("%s must be an object, got %s" % (field, _show(headers)))
    for name, value in items:
        _add_header(out, name, value)


def http_reply(status, headers, body):
    """The `http` of a result: headers with one value as a string, several as a list."""
    if len(body) > RESULT_LIMIT:
        raise ReplyError("response too large: its body is %d bytes, at most %d" % (len(body), RESULT_LIMIT))
    return {"status": status,
            "headers": {k: v[0] if len(v) == 1 else v for k, v in headers.items()},
            "body": base64.b64encode(body).decode("ascii")}


# -- lambda: API Gateway, HTTP API payload 2.0 (lambda) or REST API payload 1.0 (lambda-v1)

def _clf_time(now):
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))

# ---- python/src/formats/lambda_.py
# AWS Lambda behind API Gateway: the HTTP API event (payload 2.0), the REST API event (payload 1.0) and the
# response API Gateway makes of a Lambda's answer.
def lambda_event_v2(req, call_id):
    now = time.time()
    headers = dict(req.headers)
    cookie = headers.pop("cookie", None)
    params = {}
    for k, v in parse_qsl(req.query, keep_blank_values=True):
        params[k] = params[k] + "," + v if k in params else v
    host = _host(headers)
    request_id = os.environ.get("ZFAAS_CALL") or str(call_id)
    event = {"version": "2.0", "routeKey": "$default", "rawPath": req.path, "rawQueryString": req.query}
    if cookie:
        event["cookies"] = [c.strip() for c in cookie.split(";") if c.strip()]
    event["headers"] = headers
    if params:
        event["queryStringParameters"] = params
    event["requestContext"] = {
        "accountId": ACCOUNT_ID, "apiId": API_ID, "domainName": host, "domainPrefix": host.split(".", 1)[0],
        "http": {"method": req.method, "path": req.path, "protocol": "HTTP/1.1", "sourceIp": req.source_ip,
                 "userAgent": headers.get("user-agent", "")},
        "requestId": request_id, "routeKey": "$default", "stage": "$default",
        "time": _clf_time(now), "timeEpoch": int(now * 1000)}
    if req.body:
        event["body"], event["isBase64Encoded"] = _body_text(req.body, headers.get("content-type"))
    else:
        event["isBase64Encoded"] = False
    return event


def lambda_event_v1(req, call_id):
    now = time.time()
    headers = req.headers
    single, multi = {}, {}
    for k, v in parse_qsl(req.query, keep_blank_values=True):
        single[k] = v
        multi.setdefault(k, []).append(v)
    root = req.path == "/"
    resource = "/" if root else "/{proxy+}"
    host = _host(headers)
    request_id = os.environ.get("ZFAAS_CALL") or str(call_id)
    body, b64 = _body_text(req.body, headers.get("content-type")) if req.body else (None, False)
    user_agent = headers.get("user-agent", "")
    return {
        "resource": resource, "path": req.path, "httpMethod": req.method,
        "headers": dict(headers), "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": single or None, "multiValueQueryStringParameters": multi or None,
        "pathParameters": None if root else {"proxy": req.path[1:]}, "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID, "apiId": API_ID, "resourceId": API_ID, "resourcePath": resource,
            "httpMethod": req.method, "extendedRequestId": request_id, "requestTime": _clf_time(now),
            "requestTimeEpoch": int(now * 1000), "path": req.path, "protocol": "HTTP/1.1", "stage": "$default",
            "domainPrefix": host.split(".", 1)[0], "domainName": host,
            "identity": {"sourceIp": req.source_ip, "userAgent": user_agent, "accessKey": None,
                         "accountId": None, "caller": None, "user": None, "userArn": None,
                         "cognitoIdentityId": None, "cognitoIdentityPoolId": None,
                         "cognitoAuthenticationType": None, "cognitoAuthenticationProvider": None},
            "requestId": request_id},
        "body": body, "isBase64Encoded": b64}


def lambda_response(value, v2):
    """(status, headers, body, plain) of a Lambda proxy answer: {statusCode, headers, multiValueHeaders,
    cookies (2.0), body, isBase64Encoded}; for 2.0 any other value is a plain one, answered 200 as JSON (a
    str as it is), for 1.0 it is malformed."""
    if not (isinstance(value, dict) and "statusCode" in value):
        if not v2:
            raise Malformed("a lambda-v1 (payload 1.0) answer must be an object with statusCode, got %s"
                            % _show(value))
        # the value is the body, as JSON (a str as it is)
        body = _text_bytes(value) if isinstance(value, str) else _json_bytes(value)
        return 200, {"content-type": [JSON_TYPE]}, body, True
    status = _status(value["statusCode"])
    headers = {}
    _add_headers(headers, value.get("headers"))
    if value.get("multiValueHeaders") is not None:
        multi = {}  # a name in both: the multiValueHeaders values, as API Gateway merges them
        _add_headers(multi, value["multiValueHeaders"], "multiValueHeaders")
        headers.update(multi)
    if v2 and value.get("cookies") is not None:
        cookies = value["cookies"]
        if type(cookies) is not list or any(type(c) is not str for c in cookies):
            raise Malformed("cookies must be a list of strings, got %s" % _show(cookies))
        for c in cookies:
            _add_header(headers, "set-cookie", c)
    b64 = value.get("isBase64Encoded")
    if b64 is not None and type(b64) is not bool:
        raise Malformed("isBase64Encoded must be true or false, got %s" % _show(b64))
    body = value.get("body")
    if body is None:
        data = b""
    elif type(body) is not str:
        raise Malformed("body must be a string, got %s (JSON-encode it: json.dumps(...))" % type(body).__name__)
    elif b64:
        data = _unbase64(body, "isBase64Encoded is true but body is not valid base64")
    else:
        data = _text_bytes(body)
    if "content-type" not in headers:
        headers["content-type"] = [JSON_TYPE]
    return status, headers, data, False


# -- openwhisk: (web) actions

# ---- python/src/formats/openwhisk.py
# Apache OpenWhisk web actions: main(args) with the __ow_* fields, and the response it makes of an answer.
def openwhisk_args(req):
    """main(args): the query parameters, then the body's (a JSON object or form data), then __ow_*."""
    args = dict(parse_qsl(req.query, keep_blank_values=True))
    content_type = req.headers.get("content-type")
    mime = _mime(content_type)
    if req.body:
        if mime == JSON_TYPE or mime.endswith("+json"):
            try:
                parsed = json.loads(req.body)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                args.update(parsed)
        elif mime == "application/x-www-form-urlencoded":
            try:
                args.update(parse_qsl(req.body.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                pass
    args["__ow_method"] = req.method.lower()
    args["__ow_headers"] = dict(req.headers)
    args["__ow_path"] = "" if req.path == "/" else req.path
    args["__ow_query"] = req.query
    args["__ow_body"] = _body_text(req.body, content_type)[0]
    return args


def openwhisk_response(value):
    """(status, headers, body, plain) of an answer {statusCode, headers, body}: a str body is base64 for
    a binary content type, a dict or list is JSON; no statusCode: 200, or 204 without a body. An answer
    with none of the three is a plain value, answered 200 as JSON."""
    if not (isinstance(value, dict) and ("statusCode" in value or "headers" in value or "body" in value)):
        return 200, {"content-type": [JSON_TYPE]}, _json_bytes(value), True
    status = value.get("statusCode")
    status = None if status is None else _status(status)
    headers = {}
    _add_headers(headers, value.get("headers"))
    content_type = headers["content-type"][0] if "content-type" in headers else None
    body = value.get("body")
    if body is None:
        data = b""
    elif type(body) is str:
        if content_type is None:
            data = _text_bytes(body)
            if data:
                headers["content-type"] = [HTML]
        elif not _textual(content_type):
            data = _unbase64(body, "body must be base64 for content-type %s, got %s" % (content_type, _show(body)))
        else:
            data = _text_bytes(body)
            if _mime(content_type) == JSON_TYPE:
                # a JSON body may come base64 encoded (as OpenWhisk's own examples send it)
                try:
                    json.loads(body)
                except ValueError:
                    try:
                        decoded = base64.b64decode(body, validate=True)
                        json.loads(decoded)
                        data = decoded
                    except ValueError:
                        pass
    elif isinstance(body, (dict, list)) or type(body) in (int, float, bool):
        data = _json_bytes(body)
        headers.setdefault("content-type", [JSON_TYPE])
    else:
        raise Malformed("body must be a string, an object or an array, got %s" % type(body).__name__)
    return (status or (200 if data else 204)), headers, data, False


# -- openfaas: the python3-http template, handle(event, context)

# ---- python/src/formats/openfaas.py
# OpenFaaS's python3-http template: handle(event, context) -> {statusCode, body, headers}.
class FaasHeaders(dict):
    """Request headers as the template's Flask gives them: Title-Case names, looked up in any case."""

    def __getitem__(self, key):
        return dict.__getitem__(self, key.title() if isinstance(key, str) else key)

    def get(self, key, default=None):
        return dict.get(self, key.title() if isinstance(key, str) else key, default)

    def __contains__(self, key):
        return dict.__contains__(self, key.title() if isinstance(key, str) else key)


class FaasQuery(dict):
    """Query parameters as Flask's request.args: the first value of each name; getlist for all."""

    def __init__(self, pairs=()):
        super().__init__()
        self._all = {}
        for k, v in pairs:
            self._all.setdefault(k, []).append(v)
            self.setdefault(k, v)

    def getlist(self, key):
        return list(self._all.get(key, ()))


class FaasEvent:
    """What handle(event, context) gets: .body (bytes), .headers, .method, .query, .path."""

    def __init__(self, body, headers, method, query, path):
        self.body = body
        self.headers = headers
        self.method = method
        self.query = query
        self.path = path


class FaasContext:
    def __init__(self):
        self.hostname = os.environ.get("HOSTNAME", "localhost")


def openfaas_event(req):
    return FaasEvent(req.body, FaasHeaders((k.title(), v) for k, v in req.headers.items()), req.method.upper(),
                     FaasQuery(parse_qsl(req.query, keep_blank_values=True)), req.path)


def openfaas_direct_event(params):
    body = json.dumps(params, separators=(",", ":")).encode("utf-8")
    return FaasEvent(body, FaasHeaders({"Content-Type": JSON_TYPE, "Content-Length": str(len(body))}),
                     "POST", FaasQuery(), "/")


def _faas_plain(body, headers):
    """A value Flask makes a response of: a dict or list is JSON, bytes as they are, the rest text."""
    if isinstance(body, (dict, list)):
        headers.setdefault("content-type", [JSON_TYPE])
        return _json_bytes(body)
    headers.setdefault("content-type", [HTML])
    if body is None:
        return b""
    if isinstance(body, (bytes, bytearray)):
        return bytes(body)
    return _text_bytes(body if isinstance(body, str) else str(body))


def openfaas_response(value):
    """As the template formats it: a dict with statusCode/body/headers is the response (a dict body is
    JSON, bytes as they are, else str(body)); a tuple is Flask's (body, status[, headers]) or (body,
    headers); any other value is the body of a 200 (a dict or list as JSON)."""
    headers = {}
    if isinstance(value, dict) and ("statusCode" in value or "body" in value or "headers" in value):
        status = value.get("statusCode")
        status = 200 if status is None else _status(status)
        _add_headers(headers, value.get("headers"), pairs=True)
        body = value.get("body")
        if body is None:
            data = b""
        elif isinstance(body, dict):
            data = _json_bytes(body)
            headers.setdefault("content-type", [JSON_TYPE])
        elif isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        else:
            data = _text_bytes(body if isinstance(body, str) else str(body))
        headers.setdefault("content-type", [HTML])
        return status, headers, data, False
    if isinstance(value, tuple) and 2 <= len(value) <= 3:
        body, status, extra = value[0], 200, None
        if len(value) == 3:
            status, extra = _status(value[1], "the status of a (body, status, headers) answer"), value[2]
        elif isinstance(value[1], (dict, list)):
            extra = value[1]
        else:
            status = _status(value[1], "the status of a (body, status) answer")
        _add_headers(headers, extra, pairs=True)
        return status, headers, _faas_plain(body, headers), False
    return 200, headers, _faas_plain(value, headers), False

# ---- python/src/formats/gcf.py
# Google Cloud Functions (gcf), as the Functions Framework for Python runs them. An HTTP function gets a
# Flask request and answers what a Flask view may return; a CloudEvent function gets a CloudEvent. With the
# real framework vendored (and so Flask and cloudevents), a call runs through a Flask app of its own, as the
# framework's; without it, through a request and a CloudEvent that read as Flask's and cloudevents' do.
CE_REQUIRED = ("specversion", "id", "source", "type")
CE_EXPECTED = ("a CloudEvent: a JSON object with the string attributes specversion, id, source and type "
               "(structured mode), or a request with the headers ce-specversion, ce-id, ce-source and "
               "ce-type and the data as its body (binary mode)")
NO_VIEW_VALUE = ("the function did not return a valid response: it returned %s; it must return a string, "
                 "bytes, a dict, a list, a tuple (body, status, headers), (body, status) or (body, headers), "
                 "or a response object")
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class Refused(Exception):
    """A request the framework refuses before the function answers (Flask's 400, 415): it becomes
    that response."""

    def __init__(self, status, text):
        super().__init__(text)
        self.status = status
        self.text = text


def _is_json_type(mime):
    return mime == JSON_TYPE or (mime.startswith("application/") and mime.endswith("+json"))


class GcfRequest:
    """An HTTP request as a Flask request reads: method, path, args, headers, data, get_data(),
    get_json(), json, form, values, cookies, content_type, mimetype, is_json, remote_addr, url."""

    def __init__(self, req):
        self.method = req.method.upper()
        self.path = req.path
        self.query_string = req.query.encode("latin-1", "replace")
        self.full_path = req.path + "?" + req.query
        self.headers = FaasHeaders((k.title(), v) for k, v in req.headers.items())
        self.args = FaasQuery(parse_qsl(req.query, keep_blank_values=True))
        self.data = req.body
        self.content_type = req.headers.get("content-type")
        self.mimetype = _mime(self.content_type)
        self.content_length = len(req.body) if req.body or "content-length" in req.headers else None
        self.is_json = _is_json_type(self.mimetype)
        self.remote_addr = req.source_ip or None
        self.scheme = "http"
        self.host = req.headers.get("host", "")
        self.host_url = "http://%s/" % self.host
        self.base_url = "http://%s%s" % (self.host, req.path)
        self.url = self.base_url + ("?" + req.query if req.query else "")
        form = self.data.decode("utf-8", "replace") if self.mimetype == "application/x-www-form-urlencoded" else ""
        self.form = FaasQuery(parse_qsl(form, keep_blank_values=True))
        self.values = FaasQuery(list(parse_qsl(req.query, keep_blank_values=True)) + parse_qsl(form, keep_blank_values=True))
        cookies = SimpleCookie()
        try:
            cookies.load(req.headers.get("cookie", ""))
        except CookieError:
            pass
        self.cookies = {k: m.value for k, m in cookies.items()}

    def get_data(self, cache=True, as_text=False, parse_form_data=False):
        return self.data.decode("utf-8", "replace") if as_text else self.data

    def get_json(self, force=False, silent=False, cache=True):
        if not (force or self.is_json):
            if silent:
                return None
            raise Refused(415, "Unsupported Media Type: Did not attempt to load JSON data because the request "
                               "Content-Type was not 'application/json'.")
        try:
            return json.loads(self.data)
        except ValueError as e:
            if silent:
                return None
            raise Refused(400, "Bad Request: Failed to decode JSON object: %s" % e) from None

    @property
    def json(self):
        return self.get_json()


def _view_body(body, headers):
    """The bytes of a view's body, as Flask makes them (its content type set where it sets one)."""
    if isinstance(body, (dict, list)):
        headers.setdefault("content-type", [JSON_TYPE])
        return _json_bytes(body) + b"\n"
    if isinstance(body, str):
        headers.setdefault("content-type", [HTML])
        return _text_bytes(body)
    if isinstance(body, (bytes, bytearray)):
        headers.setdefault("content-type", [HTML])
        return bytes(body)
    if hasattr(body, "__next__") or inspect.isgenerator(body):
        headers.setdefault("content-type", [HTML])
        return b"".join(part.encode("utf-8") if isinstance(part, str) else bytes(part) for part in body)
    raise Malformed(NO_VIEW_VALUE % ("None" if body is None else "a value of type " + type(body).__name__))


def _response_object(value):
    """A werkzeug/Flask response object (the function made one itself), as (status, headers, body)."""
    headers = {}
    _add_headers(headers, list(value.headers.items()), pairs=True)
    return _status(value.status_code, "status_code"), headers, value.get_data()


def gcf_response(value):
    """A view's return value as Flask makes a response of it: (status, headers, body, plain)."""
    if hasattr(value, "status_code") and hasattr(value, "get_data") and hasattr(value, "headers"):
        return _response_object(value) + (False,)
    headers = {}
    status = 200
    if isinstance(value, tuple):
        if len(value) == 3:
            body, status, extra = value
        elif len(value) == 2 and isinstance(value[1], (dict, list)):
            body, extra = value
        elif len(value) == 2:
            body, status, extra = value[0], value[1], None
        else:
            raise Malformed("a tuple answer is (body, status, headers), (body, status) or (body, headers), "
                            "got %d items" % len(value))
        if isinstance(status, str) and status[:3].isdigit():
            status = int(status[:3])
        status = _status(status, "the status of a tuple answer")
        _add_headers(headers, extra, pairs=True)
        if hasattr(body, "status_code") and hasattr(body, "get_data"):
            _, own, data = _response_object(body)
            for k, v in own.items():
                headers.setdefault(k, v)
            return status, headers, data, False
        value = body
    return status, headers, _view_body(value, headers), False


class CloudEvent:
    """A CloudEvent as the cloudevents package's reads: event["id"], event.get(name), event.data,
    get_attributes(), get_data()."""

    def __init__(self, attributes, data=None):
        self._attributes = dict(attributes)
        self.data = data

    def __getitem__(self, key):
        return self._attributes[key]

    def __setitem__(self, key, value):
        self._attributes[key] = value

    def __contains__(self, key):
        return key in self._attributes

    def __iter__(self):
        return iter(self._attributes)

    def __len__(self):
        return len(self._attributes)

    def get(self, key, default=None):
        return self._attributes.get(key, default)

    def get_attributes(self):
        return dict(self._attributes)

    def get_data(self):
        return self.data

    def __eq__(self, other):
        return isinstance(other, CloudEvent) and (self._attributes, self.data) == (other._attributes, other.data)

    def __repr__(self):
        return "CloudEvent(%r, %r)" % (self._attributes, self.data)


def _ce_problem(v):
    if not isinstance(v, dict):
        return "got " + type(v).__name__
    missing = [k for k in CE_REQUIRED if not isinstance(v.get(k), str) or not v.get(k)]
    return "%s missing or not a non-empty string" % ", ".join(missing) if missing else None


def _json_or_bytes(body):
    """A binary-mode event's data as cloudevents reads it: JSON where it parses, else the bytes."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body


def _make_event(attributes, data):
    if ff_vendored():
        from cloudevents.http import CloudEvent as RealCloudEvent  # the package the framework depends on

        return RealCloudEvent(attributes, data)
    return CloudEvent(attributes, data)


def ce_structured(v):
    """The event of a structured-mode JSON object (data_base64 decoded)."""
    attributes = {k: x for k, x in v.items() if k not in ("data", "data_base64")}
    data = v.get("data")
    if isinstance(v.get("data_base64"), str) and "data" not in v:
        data = _unbase64(v["data_base64"], "data_base64 is not base64")
    return _make_event(attributes, data)


def ce_from_web(req):
    """The event of a web request (binary mode first), or Refused(400)."""
    h = req.headers
    if all(isinstance(h.get("ce-" + k), str) for k in CE_REQUIRED):
        attributes = {k[3:]: unquote(v) for k, v in h.items() if k.startswith("ce-") and len(k) > 3}
        if h.get("content-type"):
            attributes["datacontenttype"] = h["content-type"]
        return _make_event(attributes, _json_or_bytes(req.body))
    mime = _mime(h.get("content-type"))
    problem = "got neither the ce-* headers nor a JSON body (content type %s)" % (mime or "none")
    if _is_json_type(mime):
        try:
            v = json.loads(req.body)
            problem = _ce_problem(v)
        except ValueError as e:
            problem = "the body is not JSON (%s)" % e
        if not problem:
            return ce_structured(v)
    raise Refused(400, "Bad Request: expected %s; %s" % (CE_EXPECTED, problem))


def _text_answer(status, text):
    return status, {"content-type": ["text/plain; charset=utf-8"]}, _text_bytes(text + "\n"), False


def gcf_web(fn, kind, req, call_id):
    """A web call of a gcf function: (its value, (status, headers, body, plain))."""
    if ff_vendored():
        return None, flask_call(fn, kind, req)
    try:
        if kind == "cloudevent":
            value = invoke(fn, 1, ce_from_web(req), call_id)
            return value, (200, {"content-type": [HTML]}, b"OK", False)
        value = invoke(fn, 1, GcfRequest(req), call_id)
    except Refused as e:
        return None, _text_answer(e.status, e.text)
    value, items = split_stream(value)  # a generator streams (stream.py)
    return value, stream_response(gcf_response(value), items)


def gcf_direct(fn, kind, params, call_id):
    """A call without a web request: a CloudEvent function gets the params as its event; an HTTP function
    a POST of them as JSON, whose body is the result (a status of 400 or more fails the call)."""
    if kind == "cloudevent":
        problem = _ce_problem(params)
        if problem:
            raise ReplyError("the params must be %s; %s" % (CE_EXPECTED, problem))
        return invoke(fn, 1, ce_structured(params), call_id)
    body = json.dumps(params, separators=(",", ":")).encode("utf-8")
    req = WebRequest({"method": "POST", "path": "/", "query": "", "sourceIp": "",
                      "headers": {"content-type": JSON_TYPE, "content-length": str(len(body))},
                      "body": base64.b64encode(body).decode("ascii")})
    _, (status, _, data, _) = gcf_web(fn, kind, req, call_id)
    text = data.decode("utf-8", "replace")
    if status >= 400:
        raise ReplyError("the function answered %d: %s" % (status, text[:2000]))
    return text


_flask_apps = {}


def _flask_app(fn, kind):
    """A Flask app of the function, routed as the framework routes it (every path to the function)."""
    import flask  # the framework's dependency, vendored with it

    key = (id(fn), kind)
    if key in _flask_apps:
        return _flask_apps[key]
    app = flask.Flask(getattr(fn, "__name__", "function"))
    app.config["PROPAGATE_EXCEPTIONS"] = True  # the function's error fails the call, with its traceback

    if kind == "cloudevent":
        from cloudevents.http import from_http

        def view(path):
            try:
                event = from_http(flask.request.headers, flask.request.get_data())
            except Exception as e:  # noqa: BLE001 (cloudevents' own errors: not a CloudEvent)
                flask.abort(400, description="expected %s; %s" % (CE_EXPECTED, e))
            fn(event)
            return "OK"

        methods = ["POST"]
    else:

        def view(path):
            return fn(flask.request._get_current_object())

        methods = ALL_METHODS
    app.add_url_rule("/", "run", view, defaults={"path": ""}, methods=methods)
    app.add_url_rule("/<path:path>", "run", view, methods=methods)
    _flask_apps[key] = app
    return app


def flask_call(fn, kind, req):
    """Runs one request through the function's Flask app: (status, headers, body, plain)."""
    from werkzeug.test import EnvironBuilder

    headers = [(k, v) for k, v in req.headers.items() if k != "content-length"]
    environ = EnvironBuilder(path=req.path, method=req.method, headers=headers, data=req.body,
                             query_string=req.query, environ_base={"REMOTE_ADDR": req.source_ip}).get_environ()
    got = {}

    def start_response(status, response_headers, exc_info=None):
        got["status"], got["headers"] = status, response_headers
        return lambda _data: None

    chunks = _flask_app(fn, kind)(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    headers = {}
    _add_headers(headers, got["headers"], pairs=True)
    headers.pop("content-length", None)
    return _status(int(got["status"].split(" ", 1)[0]), "status"), headers, body, False

# ---- python/src/formats/runner.py
# Which format runs a call (the web form with `http`, the direct one without), and the processes a call left.
def _bytes_note(o):
    return "<%d bytes>" % len(o) if isinstance(o, (bytes, bytearray)) else str(o)


def web_result(value):
    """`result` of a web call answered with a plain value: the value, as for any call (bytes inside it
    are noted by their size)."""
    if value is None or isinstance(value, (str, bytes, bytearray)):
        return to_result(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_bytes_note)


def web_call(fmt, fn, n, req, call_id, kind=None):
    """Calls fn with the web request req in its format: (its return value, (status, headers, body,
    plain)); plain: the function answered a value, not a response. kind: gcf's form, "http" (the
    default) or "cloudevent"."""
    if fmt == "gcf":
        return gcf_web(fn, kind or "http", req, call_id)
    if fmt == "openfaas":
        value, items = split_stream(invoke(fn, n, openfaas_event(req), call_id, FaasContext()))  # stream.py
        return value, stream_response(openfaas_response(value), items)
    if fmt == "openwhisk":
        value = invoke(fn, n, openwhisk_args(req), call_id)
        return value, openwhisk_response(value)
    v2 = fmt == "lambda"
    value = invoke(fn, n, lambda_event_v2(req, call_id) if v2 else lambda_event_v1(req, call_id), call_id)
    return value, lambda_response(value, v2)


def direct_call(fmt, fn, n, params, call_id, kind=None):
    """A call without a web request: every format gets the params (openfaas: as its event's body; gcf: see
    gcf_direct)."""
    if fmt == "gcf":
        return gcf_direct(fn, kind or "http", params, call_id)
    if fmt == "openfaas":
        return invoke(fn, n, openfaas_direct_event(params), call_id, FaasContext())
    return invoke(fn, n, params, call_id)


_SELF = str(os.getpid())


def stray_processes():
    """Processes in this container other than init (pid 1) and this loader: what a call left running.
    One listdir of /proc (its pid entries are the only ones starting with a digit)."""
    try:
        names = os.listdir("/proc")
    except OSError:
        return 0
    return sum(1 for n in names if "0" <= n[0] <= "9" and n != "1" and n != _SELF)

# ---- python/src/stream.py
# Streamed answers (protocol version 3): a web call whose function answers with a generator (or another
# iterator: gcf's view, openfaas's handle, as the body or the whole answer; Flask's own Response(generator)
# with the Functions Framework's stand-in) has the head ({"op":"head"}) sent as soon as the function returned
# it, then each item as {"op":"chunk"} (base64, at most STREAM_CHUNK_LIMIT bytes a message), before the
# call's result, whose http.body is then empty and whose `streamed` counts the bytes sent.
_streaming = None  # the web call running now: {"id", "send", "head", "bytes"}


def open_stream(send, call_id):
    """A web call begins: it may stream until close_stream."""
    global _streaming
    _streaming = {"id": call_id, "send": send, "head": False, "bytes": 0}
    return _streaming


def close_stream(st, reply):
    """The call ended: a streamed answer's result carries no body and says how many bytes went."""
    global _streaming
    if _streaming is st:
        _streaming = None
    if st["head"] and reply.get("ok") and "http" in reply:
        reply["http"]["body"] = ""
        reply["streamed"] = st["bytes"]
    return reply


def _is_stream(v):
    return isinstance(v, types.GeneratorType) or (
        hasattr(v, "__next__") and hasattr(v, "__iter__") and not isinstance(v, (str, bytes, bytearray, dict, list, tuple)))


def _split(value, body):
    """(the answer with `body` in place of its iterator, the iterator), or (value, None)."""
    if _is_stream(value):
        return body, value
    if isinstance(value, tuple) and value and _is_stream(value[0]):
        return (body,) + value[1:], value[0]
    if isinstance(value, dict) and _is_stream(value.get("body")):
        return dict(value, body=body), value["body"]
    # a werkzeug/Flask Response made of a generator (is_streamed)
    if getattr(value, "is_streamed", False) and hasattr(value, "status_code") and hasattr(value, "headers"):
        headers = [(k, v) for k, v in value.headers.items() if k.lower() != "content-length"]
        return (body, value.status_code, headers), iter(value.response)
    return value, None


def _piece(item):
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    raise Malformed("a streamed item must be str or bytes, got %s" % type(item).__name__)


def split_stream(value):
    """A function's answer without its streamed body: (the answer with an empty body, the iterator or
    None). Outside a web call (a direct call) the items are gathered into the body instead."""
    emptied, items = _split(value, b"")
    if items is None or _streaming is not None:
        return emptied, items
    try:
        data = b"".join(_piece(i) for i in items if i is not None)
    finally:
        if hasattr(items, "close"):
            items.close()
    return _split(value, data)[0], None


def stream_response(response, items):
    """Sends the head of (status, headers, body, plain), then each item of `items` as it comes: the
    response as the result carries it (no body)."""
    st = _streaming
    if items is None or st is None:
        return response
    status, headers, _, _ = response
    headers.pop("content-length", None)
    st["head"] = True
    st["send"]({"op": "head", "id": st["id"], "status": status,
                "headers": {k: v[0] if len(v) == 1 else v for k, v in headers.items()}})
    try:
        for item in items:
            if item is None:
                continue
            data = _piece(item)
            if st["bytes"] + len(data) > STREAM_LIMIT:
                raise ReplyError("response too large: a streamed answer is at most %d bytes" % STREAM_LIMIT)
            st["bytes"] += len(data)
            for at in range(0, len(data), STREAM_CHUNK_LIMIT):
                piece = data[at:at + STREAM_CHUNK_LIMIT]
                st["send"]({"op": "chunk", "id": st["id"], "data": base64.b64encode(piece).decode("ascii")})
    finally:
        if hasattr(items, "close"):
            items.close()
    return status, headers, b"", False

# ---- python/src/concurrent.py
# Several calls at once (protocol version 3: a load with concurrency N > 1). Each call runs on a thread of
# a pool of N, in a context of its own (contextvars) that holds its variables and its logs: os.environ
# becomes a view (the call's own variables over the shared ones) and what is printed during a call goes
# into that call's logs. A coroutine function's calls all run on one asyncio loop (a thread of its own),
# so N calls that wait on I/O wait together; a plain function's calls run on the pool's threads. A
# `cancel` answers a running call at once (ok:false, CANCELLED) and cancels its coroutine; a plain
# function's thread runs on to its end, its answer dropped.
import concurrent.futures
import contextvars
from collections.abc import MutableMapping

_CALL = contextvars.ContextVar("zfaas_call", default=None)
_shared_loop = None  # the asyncio loop every call's coroutine runs on, once calls run at once
_pool = None
_running = {}  # id -> _CallState, while it runs
_running_lock = threading.Lock()


class _CallState:
    """One running call: its own variables (None: deleted in this call), its logs, its coroutine."""

    def __init__(self, call_id, env, fallback, t0):
        self.t0 = t0
        self.id = call_id
        self.env = env
        self.logs = Capture(fallback)
        self.logs.start()
        self.done = False
        self.future = None


def _own_call(key):
    c = _CALL.get()
    return c if c is not None and not c.done and key in c.env else None


class _EnvView(MutableMapping):
    """os.environ while calls run at once: inside a call its own variables, the rest shared."""

    def __init__(self, shared):
        self._shared = shared

    def __getitem__(self, key):
        c = _own_call(key)
        if c is None:
            return self._shared[key]
        if c.env[key] is None:
            raise KeyError(key)
        return c.env[key]

    def __setitem__(self, key, value):
        c = _own_call(key)
        if c is None:
            self._shared[key] = value
        elif type(value) is not str:
            raise TypeError("str expected, not %s" % type(value).__name__)
        else:
            c.env[key] = value

    def __delitem__(self, key):
        c = _own_call(key)
        if c is None:
            del self._shared[key]
        elif c.env[key] is None:
            raise KeyError(key)
        else:
            c.env[key] = None

    def __iter__(self):
        c = _CALL.get()
        own = c.env if c is not None and not c.done else {}
        for k in list(self._shared):
            if k not in own:
                yield k
        for k, v in list(own.items()):
            if v is not None:
                yield k

    def __len__(self):
        return sum(1 for _ in self)

    def copy(self):
        return dict(self)


class _CallOutput(Capture):
    """sys.stdout and sys.stderr while calls run at once: into the running call's logs, else as before."""

    def __init__(self, base):
        super().__init__(base._fallback)
        self._base = base

    def write(self, s):
        c = _CALL.get()
        if c is None or c.done:
            return self._base.write(s)
        return c.logs.write(s)


def _enter_concurrent(session, n):
    """From a load with concurrency n > 1 on: calls run beside each other (once; a later load keeps it)."""
    global _shared_loop, _pool
    if _pool is not None:
        return
    os.environ = _EnvView(os.environ)
    out = _CallOutput(session.capture)
    sys.stdout = out
    sys.stderr = out
    session.capture = out
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="zfaas-calls", daemon=True).start()
    _shared_loop = loop
    _pool = concurrent.futures.ThreadPoolExecutor(max_workers=n, thread_name_prefix="zfaas-call")


def _call_beside(session, call_id, env, params, web, t0):
    """Starts a call beside the others; its reply goes when it ends or is cancelled, whichever is first."""
    with _running_lock:
        if call_id in _running:
            return session.refuse("call %d is already running" % call_id, call_id)
        own = dict(env)
        own["ZFAAS_PARAMS"] = json.dumps(params, separators=(",", ":"))
        state = _CallState(call_id, own, sys.__stderr__, t0)
        _running[call_id] = state
    _pool.submit(contextvars.copy_context().run, _run_beside, session, state, params, web)


def _run_beside(session, state, params, web):
    _CALL.set(state)
    try:
        reply = session._run(state.id, params, web)
    except BaseException as e:  # noqa: BLE001
        reply = {"op": "result", "id": state.id, "ok": False, "error": format_error(e)}
    _finish(session, state, reply)


def _finish(session, state, reply):
    with _running_lock:
        if state.done:
            return
        state.done = True
        _running.pop(state.id, None)
        last = not _running
    reply["logs"] = state.logs.stop()
    if last:  # another call's processes are not this one's strays
        stray = stray_processes()
        if stray:
            reply["stray"] = stray
    reply["took"] = took_since(state.t0)
    try:
        session.send(reply)
    except _Hangup:
        pass


def _cancel_call(session, msg):
    """`cancel` {id}: the running call answers CANCELLED now; one that already ended is not answered again."""
    call_id = _int(msg.get("id"))
    if call_id is None or call_id < 1:
        return session.refuse("cancel needs id: a positive integer")
    state = _running.get(call_id)
    if state is None:
        return
    # Answered first: the coroutine's CancelledError then reaches a call already finished, never the reply.
    _finish(session, state, {"op": "result", "id": call_id, "ok": False, "error": CANCELLED})
    if state.future is not None:
        state.future.cancel()


async def _awaited(aw):
    return await aw


def _await_shared(aw):
    """A call's awaitable, run on the shared loop while this call's thread waits for it."""
    fut = asyncio.run_coroutine_threadsafe(_awaited(aw), _shared_loop)
    state = _CALL.get()
    if state is not None:
        state.future = fut
        if state.done:
            fut.cancel()
    return fut.result()


def _wait_calls():
    """At the end of the input: the calls still running end and are answered first."""
    if _pool is not None:
        _pool.shutdown(wait=True)

# ---- python/src/warm.py
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

# ---- python/src/secrets.py
# The `secrets` request: the function's secrets as files, replaced whole and never half-written.
# protocol/loader.ts, "Secrets": each value a file of the folder (0400), written to a temporary name and
# renamed over the old one; files not in `keep` removed. The folder is 0500 between writes.


def _secrets_problem(msg):
    directory, files, keep = msg.get("dir"), msg.get("files"), msg.get("keep")
    if type(directory) is not str or not directory.startswith("/"):
        return "dir: an absolute path"
    if type(keep) is not list or not all(type(n) is str and SECRET_NAME.match(n) for n in keep):
        return "keep: a list of names"
    if type(files) is not dict:
        return "files: an object of base64 strings"
    for name, value in files.items():
        if name not in keep:
            return "files: %s is not in keep" % json.dumps(name[:64])
        if type(value) is not str or not BASE64.match(value) or len(value) % 4:
            return "files: an object of base64 strings"
    return None


def _write_secrets(directory, files, keep):
    os.chmod(directory, 0o700)
    try:
        for name, value in files.items():
            tmp = os.path.join(directory, "." + name + ".tmp")  # a name never starts with a dot
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            data = base64.b64decode(value)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            os.rename(tmp, os.path.join(directory, name))
        wanted = set(keep)
        for f in os.listdir(directory):
            if f not in wanted:
                p = os.path.join(directory, f)
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    os.unlink(p)
    finally:
        os.chmod(directory, 0o500)

# ---- python/src/once.py
# Run-once mode (`loader.py --once`, the `none` policy): one call from stdin, its result on stdout.
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
    wanted = os.environ.get("ZFAAS_FORMAT") or "auto"
    if wanted not in FORMATS:
        sys.stderr.write("zfaas: ZFAAS_FORMAT must be one of %s\n" % FORMATS_TEXT)
        sys.stderr.flush()
        return 2
    try:
        fn, name, kind = load_function(os.environ.get("ZFAAS_DIR") or os.getcwd(), os.environ.get("ZFAAS_HANDLER") or None)
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
        n = _arity(fn)
        result = to_result(direct_call(choose_format(wanted, name, n, kind), fn, n, params, 1, kind))
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

# ---- python/src/main.py
# Warm unless asked to run once.
if __name__ == "__main__":
    if "--once" in sys.argv[1:]:
        code = once()
        try:
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
        os._exit(code)
    serve()
