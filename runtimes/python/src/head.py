#!/usr/bin/env python3
"""zfaas python loader: keeps a function warm inside its container. No third-party dependencies; Python 3.11.
Built from the modules in runtimes/python/src by `npm run loaders` (runtimes/build/loaders.ts): edit those,
not the built runtimes/python/loader.py.

Warm mode (default) speaks the loader protocol (version PROTOCOL): protocol/loader.ts is the spec (messages,
limits, transport). In short: with $ZFAAS_LINE set it dials that unix socket (retrying for up to 5 s,
then exit 1) and exits 0 when the connection ends; without it, it speaks on stdin/stdout and exits 0 at
the end of stdin. Either way it says {"op":"hello","v":PROTOCOL,"pid":N} first, then answers load, call, secrets
and ping one at a time; a request it cannot read gets {"op":"error"} and it carries on. A call's `env` is set in
os.environ for that call only. After a load with concurrency N > 1 (version 3) calls run at once on N threads,
coroutines on one shared asyncio loop, each in its own contextvars context (os.environ becomes a view of its own
variables over the shared ones; its output goes to its own logs), and `cancel` {id} answers one running call
cancelled. Everything the function prints while a call runs is captured into "logs";
outside a call it goes to stderr; it never reaches the protocol (fd 1 is re-pointed to stderr, and on
stdin/stdout the protocol uses private duplicates of them).

Run-once mode (`loader.py --once`, the `none` policy): the function dir is $ZFAAS_DIR or the cwd,
the handler is $ZFAAS_HANDLER if set; params are all of stdin (else $ZFAAS_PARAMS, else {}).
Prints the result string to stdout (no newline added) and exits 0; the function's own output goes
to stderr; an exception prints the traceback to stderr and exits 1; no handler file exits 2.

Entry: handler "FILE.EXPORT" (last dot separates, FILE may hold slashes) -> FILE.py, attribute EXPORT;
otherwise handler.py, else main.py, else lambda_function.py (AWS's default), with a function named
handler, main, lambda_handler or handle. Handlers taking two arguments get a Lambda-like context
(get_remaining_time_in_millis counts down to $ZFAAS_DEADLINE, else to $ZFAAS_TIMEOUT seconds after the
call started).

Google's Functions Framework: `import functions_framework` finds the archive's own copy, else a stand-in
offering @functions_framework.http and @functions_framework.cloud_event; a function registered with them is
found by its name (the handler's, $FUNCTION_TARGET, the only one registered, or the deployed function's).

Formats (protocol/loader.ts, "Web calls"): `load` may name the function's calling convention, `format`
(json, lambda, lambda-v1, openwhisk, openfaas, gcf; auto or missing: told from the entry where that is
unambiguous: registered with the Functions Framework -> gcf, lambda_handler -> lambda, handle(event,
context) -> openfaas, anything else json), and `loaded` says which it chose. gcf: an HTTP function gets a
Flask request (Flask's own with the real framework vendored, else one that reads the same) and answers
what a Flask view returns; a CloudEvent function gets a CloudEvent, from a call's params (structured mode)
or a web request (ce-* headers, or a JSON body), and a web caller gets "OK". A call carrying `http` (a web request) is
given to the function in its platform's shape and answered with `http` {status, headers, body (base64)}:
the response the function chose, or, for a plain value where its platform makes one (lambda 2.0,
openwhisk), a 200 of the value as JSON with the value also as `result`. A json function ignores `http`
(its params already hold the request). A response the function shaped wrongly fails the call
("malformed response: ..."), as does a body over RESULT_LIMIT bytes ("response too large: ...").
Without `http` (a direct call) every format gets the params, as its platform's direct invoke does
(openfaas: an event whose body is the params as JSON), and answers the value as `result`. Run-once mode
takes the format from $ZFAAS_FORMAT (default auto) and makes a direct call.
"""
import asyncio
import base64
import binascii
import ctypes
import importlib.util
import inspect
import io
import json
import os
import re
import shutil
import socket
import sys
import threading
import time
import traceback
import types
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, unquote
