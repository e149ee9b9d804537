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
