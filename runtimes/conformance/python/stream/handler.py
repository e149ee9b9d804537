# The conformance suite's streaming function (runtimes/conformance/README.md): a gcf view answering a
# generator, three items (and, with ?big, one longer than a chunk carries; with ?fail, an error after them).
def handler(request):
    def parts():
        yield "one "
        yield "two "
        yield "three"
        if request.query_string == b"big":
            yield b"x" * (300 * 1024)
        if request.query_string == b"fail":
            raise RuntimeError("boom mid-stream")
    return parts(), 202, {"content-type": "text/plain"}
