// `zfaas deploy` follows the new version's build (its runtime's dependencies step, run at deploy on a
// node): a spinner with the time taken on a terminal, one line otherwise; on a failed build, the step's
// own output (npm's, pip's) on stderr and a failure (exit 1), so that a script sees it.
import type { Build } from '../../common/build.js';
import type { FunctionMeta } from '../../common/model.js';
import type { ApiClient } from '../client/api.js';
import { CliError, printable } from '../client/errors.js';
import type { Output } from '../client/output.js';
import { bareName } from '../../common/namespace.js';

const SPIN = ['|', '/', '-', '\\'];

// The version once its build has ended.
export async function followBuild(api: Pick<ApiClient, 'fnVersion'>, out: Output, fn: FunctionMeta, pollMs = 500): Promise<FunctionMeta> {
  const name = bareName(fn.functionName);
  let cur = fn;
  if (cur.build?.state !== 'building') return cur;
  const t0 = Date.now();
  if (!out.status) out.note(`building ${name} version ${fn.version} (its dependencies step)...`);
  for (let i = 0; cur.build?.state === 'building'; i++) {
    const s = Math.round((Date.now() - t0) / 1000);
    out.status?.(`${SPIN[i % SPIN.length]} building ${name} version ${fn.version}: dependencies step, ${s}s`);
    await new Promise((r) => setTimeout(r, pollMs));
    const { versions: _versions, ...meta } = await api.fnVersion(name, fn.version);
    cur = meta;
  }
  out.status?.(null);
  return cur;
}

// A failed build: its log on stderr, then the failure as the command's error.
export function failedBuild(out: Output, fn: FunctionMeta, b: Build): CliError {
  if (b.log) out.note(`the build's log (its end):\n${printable(b.log, false)}`);
  return new CliError(
    `deployed ${bareName(fn.functionName)} version ${fn.version}, but its build failed (its calls end in ERROR until a fixed version is deployed): ${printable(b.error ?? 'unknown error')}`,
  );
}

// One line on a build that ended well, for the deploy's summary.
export function builtLine(b: Build | undefined): string {
  if (!b || b.state !== 'ready') return '';
  const s = b.finishedAt ? ((Date.parse(b.finishedAt) - Date.parse(b.startedAt)) / 1000).toFixed(1) : '?';
  return b.digest ? `, built in ${s}s on ${b.node ?? 'a node'}` : '';
}
