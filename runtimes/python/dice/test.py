"""zfaas example (the seed's dice): roll dice.

Params (JSON on stdin, else in the ZFAAS_PARAMS environment variable): {"roll": "NdM"},
e.g. {"roll": "4d6"} prints a JSON list of four ints in 1..6, like [4,6,4,3].
Bad input: a message on stderr and exit status 1.
"""
import json
import os
import random
import re
import sys

MAX_DICE = 1000
MAX_SIDES = 1000000


def fail(message):
    sys.stderr.write("dice: %s\n" % message)
    sys.exit(1)


def main():
    raw = sys.stdin.read() if not sys.stdin.isatty() else ""
    if not raw.strip():
        raw = os.environ.get("ZFAAS_PARAMS", "")
    if not raw.strip():
        fail('no params: expected {"roll": "NdM"}, e.g. {"roll": "4d6"}')
    try:
        params = json.loads(raw)
    except ValueError as e:
        fail("params are not valid JSON: %s" % e)
    if not isinstance(params, dict) or "roll" not in params:
        fail('expected {"roll": "NdM"}, e.g. {"roll": "4d6"}')
    m = re.fullmatch(r"\s*(\d*)\s*[dD]\s*(\d+)\s*", str(params["roll"]))
    if not m:
        fail('bad roll %r: expected "NdM", e.g. "4d6"' % (params["roll"],))
    count = int(m.group(1) or 1)
    sides = int(m.group(2))
    if not 1 <= count <= MAX_DICE:
        fail("number of dice must be between 1 and %d" % MAX_DICE)
    if not 1 <= sides <= MAX_SIDES:
        fail("number of sides must be between 1 and %d" % MAX_SIDES)
    rng = random.SystemRandom()
    print(json.dumps([rng.randint(1, sides) for _ in range(count)], separators=(",", ":")))


if __name__ == "__main__":
    main()
