# The loader's own settings and the error it raises when no handler is found.
CONNECT_FOR = 5.0  # seconds to keep dialing it
ERR_LIMIT = 8 * 1024
LOADER_FILE = os.path.abspath(__file__)
ACCOUNT_ID = "000000000000"  # what the lambda formats say for an AWS account


class NoHandler(Exception):
    """No handler file or function was found."""
