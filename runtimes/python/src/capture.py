# Output capture: what a function prints during a call goes into the call's `logs` (bounded, keeping the
# end); outside a call it goes to stderr; never to the protocol.
class Capture(io.TextIOBase):
    """A text stream that collects a call's output (bounded, keeps the end) or, between calls,
    forwards to a fallback stream."""

    def __init__(self, fallback):
        super().__init__()
        self._fallback = fallback
        self._chunks = []
        self._size = 0
        self._dropped = 0
        self.collecting = False

    def start(self):
        self._chunks, self._size, self._dropped = [], 0, 0
        self.collecting = True

    def stop(self):
        self.collecting = False
        text = "".join(self._chunks)
        dropped = self._dropped
        if len(text) > LOG_LIMIT:
            dropped += len(text) - LOG_LIMIT
            text = text[-LOG_LIMIT:]
        self._chunks, self._size, self._dropped = [], 0, 0
        if dropped:
            text = "[... %d characters of logs truncated ...]\n" % dropped + text
        return text

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        if not self.collecting:
            try:
                self._fallback.write(s)
                self._fallback.flush()
            except Exception:
                pass
            return len(s)
        self._chunks.append(s)
        self._size += len(s)
        if self._size > 2 * LOG_LIMIT:
            text = "".join(self._chunks)
            self._dropped += len(text) - LOG_LIMIT
            text = text[-LOG_LIMIT:]
            self._chunks, self._size = [text], len(text)
        return len(s)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass

    def writable(self):
        return True

    def readable(self):
        return False

    def isatty(self):
        return False

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "replace"
