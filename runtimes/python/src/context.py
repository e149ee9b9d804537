# The Lambda-like context a two-argument handler gets.
class Context:
    """An AWS-Lambda-like context for handlers that take (event, context). What is cheap is set, the rest
    is worked out only when asked for (a json call makes one for every call)."""

    identity = None
    client_context = None

    def __init__(self, call_id):
        self.aws_request_id = os.environ.get("ZFAAS_CALL") or str(call_id)
        self.request_id = self.aws_request_id
        self.function_name = os.environ.get("ZFAAS_FUNCTION", "")
        self.function_version = os.environ.get("ZFAAS_FUNCTION_VERSION") or "$LATEST"
        self.memory_limit_in_mb = os.environ.get("ZFAAS_MEMORY", "")
        # read now: a call's own variables (ZFAAS_DEADLINE, epoch ms) are gone once it returns
        try:
            self._end = float(os.environ.get("ZFAAS_DEADLINE") or 0) / 1000
        except ValueError:
            self._end = 0
        if not self._end > 0:
            try:
                self._end = time.time() + float(os.environ.get("ZFAAS_TIMEOUT") or 30)
            except ValueError:
                self._end = time.time() + 30

    @property
    def invoked_function_arn(self):
        return "arn:aws:lambda:zfaas:%s:function:%s" % (ACCOUNT_ID, self.function_name)

    @property
    def log_group_name(self):
        return "/aws/lambda/" + self.function_name

    @property
    def log_stream_name(self):
        return "%s/[%s]%s" % (time.strftime("%Y/%m/%d", time.gmtime()), self.function_version,
                              os.environ.get("HOSTNAME", "zfaas"))

    def get_remaining_time_in_millis(self):
        return max(0, int((self._end - time.time()) * 1000))
