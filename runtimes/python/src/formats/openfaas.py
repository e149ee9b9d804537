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
