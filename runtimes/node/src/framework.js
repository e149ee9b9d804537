// Google's Functions Framework: functions.http(name, fn) and functions.cloudEvent(name, fn) register a function
// by name when its module loads. An archive that vendors @google-cloud/functions-framework registers in that
// package's own registry, which is read after the load; one that does not gets, for that one module name,
// a stand-in offering the same two calls (and nothing else), so Google's samples load unchanged.
// Both are read by name (getRegisteredFunction); Node resolves the package as usual, so a copy in a folder
// above the function's (node_modules of a parent) counts as vendored.
const FF_NAME = '@google-cloud/functions-framework';
// The stand-in's key in require's cache: no file is ever read from it.
const FF_STAND_IN = path.join(path.dirname(LOADER_FILE), '.zfaas-functions-framework.js');
// What the real package keeps its registry in (build/src/function_registry.js: getRegisteredFunction(name)).
const FF_REGISTRY_FILE = /[\\/]@google-cloud[\\/]functions-framework[\\/]build[\\/]src[\\/]function_registry\.js$/;
// As the real package accepts names.
const FF_FUNCTION_NAME = /^[A-Za-z0-9-]+$/;

const ffRegistry = new Map(); // name -> { fn, kind: 'http' | 'cloudevent' }, what the stand-in was told

function ffRegister(kind) {
  return (name, fn) => {
    if (typeof name !== 'string' || !FF_FUNCTION_NAME.test(name)) throw new Error(`Invalid function name: ${name}`);
    if (typeof fn !== 'function')
      throw new TypeError(`functions.${kind === 'http' ? 'http' : 'cloudEvent'}("${name}", fn) needs a function`);
    ffRegistry.set(name, { fn, kind });
  };
}

function ffStandIn() {
  const m = new Module(FF_STAND_IN, null);
  m.filename = FF_STAND_IN;
  m.loaded = true;
  m.exports = Object.freeze({ http: ffRegister('http'), cloudEvent: ffRegister('cloudevent') });
  return m;
}

// `require('@google-cloud/functions-framework')` resolves to the stand-in only where Node finds no such package.
// Where it finds one, the real registry's two calls are wrapped as it loads (before the package's entry
// hands them out), so that the names registered through it are known too.
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  let file;
  try {
    file = resolveFilename.call(this, request, ...rest);
  } catch (e) {
    if (request !== FF_NAME || !e || e.code !== 'MODULE_NOT_FOUND') throw e;
    if (!require.cache[FF_STAND_IN]) require.cache[FF_STAND_IN] = ffStandIn();
    return FF_STAND_IN;
  }
  if (typeof file === 'string' && FF_REGISTRY_FILE.test(file) && !ffWatched.has(file)) ffWatch(file);
  return file;
};

const ffWatched = new Set(); // the real registries' files, each watched once
const ffRealRegistries = []; // getRegisteredFunction of each copy of the real package loaded
const ffRealNames = new Set(); // what was registered through them

function ffWatch(file) {
  ffWatched.add(file);
  let reg;
  try {
    reg = require(file);
  } catch (_) {
    return; // the package's own require says what is wrong
  }
  if (!reg || typeof reg.getRegisteredFunction !== 'function') return;
  ffRealRegistries.push(reg.getRegisteredFunction);
  for (const call of ['http', 'cloudEvent']) {
    const register = reg[call];
    if (typeof register !== 'function') continue;
    try {
      reg[call] = function (name) {
        const r = register.apply(this, arguments);
        ffRealNames.add(name);
        return r;
      };
    } catch (_) {
      /* a read-only export: its names are found by name only */
    }
  }
}

// -> { fn, kind } registered under `name`, or null
function ffLookup(name) {
  const own = ffRegistry.get(name);
  if (own) return own;
  for (const get of ffRealRegistries) {
    const r = get(name);
    if (r && typeof r.userFunction === 'function' && (r.signatureType === 'http' || r.signatureType === 'cloudevent'))
      return { fn: r.userFunction, kind: r.signatureType };
  }
  return null;
}

// The registration a function loaded without a name means: the only one made, else the one named as the
// function is deployed (what gcloud takes for the entry point when none is given).
function ffDefault() {
  const names = new Set([...ffRegistry.keys(), ...ffRealNames]);
  if (names.size === 1) return ffLookup(names.values().next().value);
  const own = process.env.ZFAAS_FUNCTION;
  return own && FF_FUNCTION_NAME.test(own) ? ffLookup(own) : null;
}

// ES modules resolve without require: before the first import of a function's module, a resolve hook gives
// `import ... from '@google-cloud/functions-framework'` the same stand-in where Node finds no package.
// (Module.register: Node 18.19 and later; without it an ES module must vendor the package.)
const FF_GLOBAL = Symbol.for('zfaas.functionsFramework');
let ffHooked = false;
function ffHookImports() {
  if (ffHooked || typeof Module.register !== 'function') return;
  ffHooked = true;
  globalThis[FF_GLOBAL] = ffStandIn().exports;
  const standIn =
    'data:text/javascript,' +
    encodeURIComponent(
      "const ff = globalThis[Symbol.for('zfaas.functionsFramework')];\n" +
        'export const http = ff.http;\nexport const cloudEvent = ff.cloudEvent;\nexport default ff;\n',
    );
  const hooks =
    'export async function resolve(specifier, context, next) {\n' +
    '  try {\n    return await next(specifier, context);\n  } catch (e) {\n' +
    `    if (specifier === ${JSON.stringify(FF_NAME)} && e && e.code === 'ERR_MODULE_NOT_FOUND')\n` +
    `      return { url: ${JSON.stringify(standIn)}, format: 'module', shortCircuit: true };\n` +
    '    throw e;\n  }\n}\n';
  Module.register('data:text/javascript,' + encodeURIComponent(hooks));
}
