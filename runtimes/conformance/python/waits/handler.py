# The conformance suite's function for several calls at once (runtimes/conformance/README.md).
import asyncio
import os


async def handler(params):
    print("start", params.get("n"), os.environ.get("ZFAAS_CALL"))
    await asyncio.sleep((params.get("ms") or 0) / 1000)
    print("end", params.get("n"), os.environ.get("ZFAAS_CALL"))
    if params.get("fail"):
        raise RuntimeError("boom %s" % params.get("n"))
    return {"n": params.get("n"), "call": os.environ.get("ZFAAS_CALL")}
