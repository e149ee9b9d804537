// The stress run's functions: one body per runtime kind, all with the same behaviour driven by the call's
// params {tok, ms, fail, failUntil}: work `ms`, fail when told to (or while ZFAAS_ATTEMPT <= failUntil),
// and answer {tok, attempt}, so that each call's result says whose it is and which run made it.
import { packFiles } from '../archives.js';
import type { Kind } from './scenario.js';

const NODE = `module.exports = async (p) => {
  const attempt = Number(process.env.ZFAAS_ATTEMPT || 1);
  if (p.ms) await new Promise((r) => setTimeout(r, p.ms));
  if (p.fail || attempt <= (p.failUntil || 0)) throw new Error('planned failure ' + p.tok + ' at attempt ' + attempt);
  return { tok: p.tok, attempt };
};
`;

const PYTHON = `import os, time

def main(p):
    attempt = int(os.environ.get("ZFAAS_ATTEMPT", "1"))
    if p.get("ms"):
        time.sleep(p["ms"] / 1000)
    if p.get("fail") or attempt <= p.get("failUntil", 0):
        raise Exception("planned failure %s at attempt %d" % (p["tok"], attempt))
    return {"tok": p["tok"], "attempt": attempt}
`;

// The seed's form: a script that reads its params on stdin and prints its result.
const SCRIPT = `import json, os, sys, time
p = json.load(sys.stdin)
attempt = int(os.environ.get("ZFAAS_ATTEMPT", "1"))
if p.get("ms"):
    time.sleep(p["ms"] / 1000)
if p.get("fail") or attempt <= p.get("failUntil", 0):
    sys.stderr.write("planned failure %s at attempt %d\\n" % (p["tok"], attempt))
    sys.exit(1)
print(json.dumps({"tok": p["tok"], "attempt": attempt}))
`;

// Runtimes registered the seed's way (POST /registerRuntime with a run command and no loader).
export const SEED_RUNTIMES = [
  { name: 'stress-seed', image: 'pythonruntime', path: '/ws', dependencies: 'true', run: 'python3 test.py' },
  { name: 'stress-slowdeps', image: 'pythonruntime', path: '/ws', dependencies: 'sleep 2', run: 'python3 test.py' },
];

export function runtimeOf(kind: Kind): string {
  return kind === 'seed' ? 'stress-seed' : kind === 'slowdeps' ? 'stress-slowdeps' : kind;
}

export function archiveOf(kind: Kind): Promise<Buffer> {
  if (kind === 'node') return packFiles({ 'index.js': NODE });
  if (kind === 'python') return packFiles({ 'main.py': PYTHON });
  return packFiles({ 'test.py': SCRIPT });
}
