// The loader's own settings and the errors it words itself; Node's modules it uses.
const fs = require('fs');
const net = require('net');
const path = require('path');
const Module = require('module');
const { EventEmitter } = require('events');
const { pathToFileURL } = require('url');

const CONNECT_FOR_MS = 5000; // how long to keep dialing it
const ERR_LIMIT = 8 * 1024;
const LOADER_FILE = __filename;
const INTERNAL_FRAME = /\(node:internal|at node:internal|at new Promise \(<anonymous>\)/;

class NoHandler extends Error {}
// An error the loader words itself: its message is all it says.
class ReplyError extends Error {}
// The function answered, but with a response that cannot be carried (malformed, too large): the call's
// result says `fault: 'response'`, and a web caller gets 502 instead of 500.
class ResponseError extends ReplyError {}
