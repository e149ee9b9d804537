# Warm unless asked to run once.
if __name__ == "__main__":
    if "--once" in sys.argv[1:]:
        code = once()
        try:
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
        os._exit(code)
    serve()
