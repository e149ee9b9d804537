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
