# Run-once mode (`loader.py --once`, the `none` policy): one call from stdin, its result on stdout.
def once():
    out_fd = os.dup(1)
    os.dup2(2, 1)  # the function's prints (even from C code / subprocesses) go to stderr
    sys.stdout = sys.stderr
    raw = ""
    try:
        raw = sys.stdin.read()
    except Exception:  # noqa: BLE001
        raw = ""
    if not raw.strip():
        raw = os.environ.get("ZFAAS_PARAMS", "").strip() or "{}"
    try:
        params = json.loads(raw)
    except ValueError as e:
        sys.stderr.write("zfaas: params are not valid JSON: %s\n" % e)
        sys.stderr.flush()
        return 1
    os.environ["ZFAAS_PARAMS"] = json.dumps(params, separators=(",", ":"))
    sys.stdin = io.StringIO(os.environ["ZFAAS_PARAMS"])
    wanted = os.environ.get("ZFAAS_FORMAT") or "auto"
    if wanted not in FORMATS:
        sys.stderr.write("zfaas: ZFAAS_FORMAT must be one of %s\n" % FORMATS_TEXT)
        sys.stderr.flush()
        return 2
    try:
        fn, name, kind = load_function(os.environ.get("ZFAAS_DIR") or os.getcwd(), os.environ.get("ZFAAS_HANDLER") or None)
    except NoHandler as e:
        sys.stderr.write("zfaas: %s\n" % e)
        sys.stderr.flush()
        return 2
    except BaseException as e:  # noqa: BLE001
        if not _exit_error(e):
            return 0
        sys.stderr.write(format_error(e) + "\n")
        sys.stderr.flush()
        return 1
    try:
        n = _arity(fn)
        result = to_result(direct_call(choose_format(wanted, name, n, kind), fn, n, params, 1, kind))
    except BaseException as e:  # noqa: BLE001
        if not _exit_error(e):
            return 0
        sys.stderr.write(format_error(e) + "\n")
        sys.stderr.flush()
        return 1
    # the platform keeps the first 6 MiB of a result: one byte more tells it there was more
    data = result[:RESULT_LIMIT + 1].encode("utf-8", "replace")[:RESULT_LIMIT + 1]
    del result
    while data:
        n = os.write(out_fd, data)
        data = data[n:]
    return 0
