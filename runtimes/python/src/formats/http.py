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
