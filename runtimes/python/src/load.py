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
