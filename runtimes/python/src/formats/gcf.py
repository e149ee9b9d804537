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
