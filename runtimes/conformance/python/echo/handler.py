# The conformance suite's json function (runtimes/conformance/README.md).
import os
import time


def handler(params):
    print("echo", params.get("n"))
    if params.get("ms"):
        time.sleep(params["ms"] / 1000)
    if params.get("fail"):
        raise RuntimeError("boom on purpose")
    return {"n": params.get("n"), "call": os.environ.get("ZFAAS_CALL"), "greeting": os.environ.get("GREETING")}
