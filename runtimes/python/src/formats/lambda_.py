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
