// Run-once mode (`loader.js --once`, the `none` policy): one call from stdin, its result on stdout.
function readStdin() {
  return new Promise((resolve) => {
    if (process.stdin.isTTY) return resolve('');
    const parts = [];
    process.stdin.on('data', (d) => parts.push(d));
    process.stdin.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    process.stdin.on('error', () => resolve(Buffer.concat(parts).toString('utf8')));
  });
}

async function once() {
  // Docker hands the process non-blocking pipes: a write that does not fit would be queued in memory and
  // lost at exit. Blocking writes keep every print (the platform keeps the end) and the result whole.
  for (const s of [process.stdout, process.stderr]) {
    if (s._handle && typeof s._handle.setBlocking === 'function') s._handle.setBlocking(true);
  }
  redirectOutput(true); // the function's own prints go to stderr
  const fail = (code, text) => {
    realStderrWrite(text.endsWith('\n') ? text : text + '\n', () => process.exit(code));
  };
  process.on('uncaughtException', (e) => fail(1, formatError(e)));
  process.on('unhandledRejection', (r) => fail(1, formatError(r)));

  let raw = await readStdin();
  if (!raw.trim()) raw = (process.env.ZFAAS_PARAMS || '').trim() || '{}';
  let params;
  try {
    params = JSON.parse(raw);
  } catch (e) {
    return fail(1, `zfaas: params are not valid JSON: ${e.message}`);
  }
  process.env.ZFAAS_PARAMS = JSON.stringify(params);
  const format = process.env.ZFAAS_FORMAT || 'auto';
  if (!FORMATS.includes(format)) return fail(1, `zfaas: ZFAAS_FORMAT=${format} is not one of ${FORMATS.join(', ')}`);
  let runner;
  try {
    const loaded = await loadFunction(process.env.ZFAAS_DIR || process.cwd(), process.env.ZFAAS_HANDLER || null, format);
    runner = makeRunner(loaded.fn, loaded.format, loaded.kind);
  } catch (e) {
    return fail(e instanceof NoHandler ? 2 : 1, e instanceof NoHandler ? `zfaas: ${e.message}` : formatError(e));
  }
  let result;
  try {
    result = toResult(await runner.direct(params, 1));
  } catch (e) {
    return fail(1, errorText(e));
  }
  // The platform keeps the first 6 MiB of a result: one character more tells it there was more.
  if (result.length > RESULT_LIMIT + 1) result = result.slice(0, RESULT_LIMIT + 1);
  realStdoutWrite(result, () => process.exit(0));
}
