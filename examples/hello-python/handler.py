# zfaas example: the smallest python function. Deploy with the built-in "python" runtime.
def handler(event):
    return {"hello": (event or {}).get("name", "world")}
