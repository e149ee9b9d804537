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
