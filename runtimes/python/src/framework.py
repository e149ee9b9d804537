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
