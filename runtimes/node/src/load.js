// Loading a function: its entry file (CommonJS, ESM or a plain script), its export, and the format its shape says.
function tryFile(base) {
  for (const cand of [base, base + '.js', base + '.cjs', base + '.mjs', path.join(base, 'index.js')]) {
    try {
      if (fs.statSync(cand).isFile()) return cand;
    } catch (_) {
      /* next */
    }
  }
  return null;
}

function isEsm(file) {
  if (file.endsWith('.mjs')) return true;
  if (file.endsWith('.cjs')) return false;
  // nearest package.json with "type": "module"
  let dir = path.dirname(file);
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        return JSON.parse(fs.readFileSync(pj, 'utf8')).type === 'module';
      } catch (_) {
        return false;
      }
    }
    const up = path.dirname(dir);
    if (up === dir) return false;
    dir = up;
  }
}

// A plain script (OpenWhisk's style: a top-level `function main`, no exports) is compiled with this line
// appended: it exports main, and marks the module, when the script itself exported nothing.
const PLAIN_MAIN = Symbol.for('zfaas.plainMain');
const PLAIN_TAIL =
  "\n;if (typeof main === 'function' && module.exports !== null && typeof module.exports === 'object' &&" +
  " Object.keys(module.exports).length === 0) { module.exports = main; module[Symbol.for('zfaas.plainMain')] = true; }\n";

function requirePlain(file) {
  let real = file;
  try {
    real = fs.realpathSync(file); // the name require compiles it under
  } catch (_) {
    /* require says what is wrong */
  }
  const proto = Module.prototype;
  const compile = proto._compile;
  proto._compile = function (content, filename, ...rest) {
    if (filename === real) {
      proto._compile = compile;
      content += PLAIN_TAIL;
    }
    return compile.call(this, content, filename, ...rest);
  };
  let mod;
  try {
    mod = require(real);
  } finally {
    proto._compile = compile;
  }
  const m = require.cache[real];
  return { mod, plain: !!(m && m[PLAIN_MAIN]) };
}

function importEsm(file) {
  ffHookImports();
  return import(pathToFileURL(file).href);
}

async function importFile(file, plainMain) {
  if (isEsm(file)) return { mod: await importEsm(file), plain: false };
  try {
    return plainMain ? requirePlain(file) : { mod: require(file), plain: false };
  } catch (e) {
    if (e && e.code === 'ERR_REQUIRE_ESM') return { mod: await importEsm(file), plain: false };
    throw e;
  }
}

function pickExport(mod, name, format) {
  const cands = [];
  if (name) {
    cands.push(mod && mod[name]);
    if (mod && mod.default && typeof mod.default === 'object') cands.push(mod.default[name]);
    if (name === 'default') cands.push(mod);
  } else {
    const order = format === 'openwhisk' ? ['main', 'handler'] : ['handler', 'main'];
    cands.push(mod);
    if (mod) cands.push(mod[order[0]], mod[order[1]], mod.default);
    if (mod && mod.default && typeof mod.default === 'object') cands.push(mod.default[order[0]], mod.default[order[1]]);
  }
  return cands.find((f) => typeof f === 'function') || null;
}

// The one function a module exports (Cloud Functions name theirs: exports.myFunction = (req, res) => ...).
function soleFunction(mod) {
  if (!mod || typeof mod !== 'object') return null;
  let found = null;
  for (const k of Object.keys(mod)) {
    let f = mod[k];
    if (k === 'default' && f && typeof f === 'object') f = soleFunction(f);
    if (typeof f !== 'function' || f === found) continue;
    if (found) return null;
    found = f;
  }
  return found;
}

// The names of a function's first two parameters (null: destructured or rest), from its source.
function firstParams(fn) {
  let src;
  try {
    src = Function.prototype.toString.call(fn);
  } catch (_) {
    return [];
  }
  const arrow = /^(?:async\s+)?([A-Za-z_$][\w$]*)\s*=>/.exec(src);
  if (arrow) return [arrow[1]];
  if (/^class\b/.test(src)) return [];
  let i = src.indexOf('(');
  if (i === -1) return [];
  const parts = [];
  let cur = '';
  let depth = 0;
  for (i++; i < src.length && parts.length < 2; i++) {
    const c = src[i];
    if (c === '/' && (src[i + 1] === '*' || src[i + 1] === '/')) {
      const e = src[i + 1] === '*' ? src.indexOf('*/', i + 2) + 1 : src.indexOf('\n', i);
      if (e <= 0) break;
      i = e;
    } else if (c === '"' || c === "'" || c === '`') {
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += src[j] === '\\' ? 2 : 1;
      i = j;
      cur += '_';
    } else if (c === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else if ((c === ')' || c === ']' || c === '}') && depth === 0) {
      parts.push(cur);
      break;
    } else {
      if (c === '(' || c === '[' || c === '{') depth++;
      else if (c === ')' || c === ']' || c === '}') depth--;
      cur += c;
    }
  }
  return parts.map((p) => {
    const m = /^\s*([A-Za-z_$][\w$]*)/.exec(p);
    return m ? m[1] : null;
  });
}

function isReqRes(fn) {
  const [a, b] = firstParams(fn);
  return (a === 'req' && b === 'res') || (a === 'request' && b === 'response');
}

// -> { fn, format, kind }: the function, its format (`format` as asked; auto: the one its shape or its
// registration says) and, for gcf, its kind: 'http' (req, res) or 'cloudevent' (a CloudEvent)
async function loadFunction(dir, handler, format = 'auto') {
  dir = path.resolve(dir || '.');
  let st;
  try {
    st = fs.statSync(dir);
  } catch (_) {
    st = null;
  }
  if (!st || !st.isDirectory()) throw new NoHandler(`function directory ${dir} does not exist`);
  process.chdir(dir);

  let file;
  let exportName = null;
  if (handler) {
    handler = String(handler).trim();
    const dot = handler.lastIndexOf('.');
    if (dot <= 0 || dot === handler.length - 1) throw new NoHandler(`handler "${handler}" is not of the form FILE.EXPORT`);
    const filePart = handler.slice(0, dot);
    exportName = handler.slice(dot + 1);
    file = tryFile(path.resolve(dir, filePart));
    if (!file) throw new NoHandler(`handler file ${filePart}(.js|.cjs|.mjs) not found in ${dir}`);
  } else {
    let main = null;
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        main = JSON.parse(fs.readFileSync(pj, 'utf8')).main || null;
      } catch (e) {
        throw new NoHandler(`cannot parse ${pj}: ${e.message}`);
      }
    }
    if (main) {
      file = tryFile(path.resolve(dir, main));
      if (!file) throw new NoHandler(`package.json main "${main}" not found in ${dir}`);
    } else {
      file = tryFile(path.join(dir, 'index.js')) || tryFile(path.join(dir, 'index.mjs'));
      if (!file && format === 'openfaas') file = tryFile(path.join(dir, 'handler.js')); // the templates' file
      if (!file)
        throw new NoHandler(`no handler found in ${dir}: expected package.json "main" or index.js, or a handler setting FILE.EXPORT`);
    }
    // the Functions Framework's way of naming the entry point
    if ((format === 'gcf' || format === 'auto') && process.env.FUNCTION_TARGET) exportName = process.env.FUNCTION_TARGET;
  }
  const plainMain = format === 'auto' || format === 'openwhisk';
  const { mod, plain } = await importFile(file, plainMain);
  // A function registered with the Functions Framework comes first, as the framework has it.
  const reg = exportName ? ffLookup(exportName) : ffDefault();
  if (reg) {
    const gcf = format === 'auto' || format === 'gcf';
    return { fn: reg.fn, format: gcf ? 'gcf' : format, kind: gcf ? reg.kind : 'http' };
  }
  let fn = plain && (!exportName || exportName === 'main') ? mod : pickExport(mod, exportName, format);
  if (!fn && !exportName && (format === 'gcf' || format === 'auto')) {
    const only = soleFunction(mod);
    if (only && (format === 'gcf' || isReqRes(only))) fn = only;
  }
  if (!fn) {
    const rel = path.relative(dir, file);
    throw new NoHandler(
      exportName
        ? `${rel} has no exported function "${exportName}", nor one registered under that name with functions.http or functions.cloudEvent`
        : `${rel} exports no function (module.exports = fn, exports.handler or exports.main${plainMain ? ', or a plain script with a top-level function main' : ''}) and registers none with functions.http or functions.cloudEvent`,
    );
  }
  // awslambda.streamifyResponse marks a Lambda handler (stream.js)
  if (format === 'auto') format = plain ? 'openwhisk' : isReqRes(fn) ? 'gcf' : isStreamified(fn) ? 'lambda' : 'json';
  return { fn, format, kind: 'http' };
}
