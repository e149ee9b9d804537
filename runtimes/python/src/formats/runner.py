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
