// What a node does differently for a container-image function (common/image-function.ts): it runs the
// function's own image (the runtime record is shared by every such function, so the node puts the image
// into it), keeps it warm under policy `function` even when `runtime` is asked (stem cells hold a
// runtime's image, and an image function has its own), and installs zfaas-bridge, the loader its
// containers get, into a folder of its data directory that those containers mount read-only; and lets the
// image's own user (any uid) dial the line.
import { chmod, copyFile, mkdir, rename, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BRIDGE_FILE, imageRuntime } from '../common/image-function.js';
import { LINE_FILE } from '../protocol/loader.js';
import { errText, type Logger } from '../common/log.js';
import type { FunctionMeta, Policy } from '../common/model.js';
import type { FnDef } from '../protocol/broker.js';

// The definition as this node runs it: an image function's runtime carries the function's image.
export const forNode = <T extends Pick<FnDef, 'fn' | 'runtime'>>(def: T): T =>
  def.fn.image ? { ...def, runtime: imageRuntime(def.runtime, def.fn.image) } : def;

// The policy a function's containers follow here: an image function has no stem cells, so `runtime` keeps
// it warm as `function` does.
export const policyFor = (fn: FunctionMeta, asked: Policy): Policy => (fn.image && asked === 'runtime' ? 'function' : asked);

// Where the bridge comes from: ZFAAS_BRIDGE, else the one `npm run bridge` builds in this checkout.
export const bridgeSource = (): string =>
  process.env.ZFAAS_BRIDGE ?? resolve(fileURLToPath(new URL('../../runtimes/image/bin', import.meta.url)), BRIDGE_FILE);

// Copies the bridge into `dir` (0755, replaced whole), or says why image functions cannot run here.
export async function installBridge(dir: string, log: Logger, source = bridgeSource()): Promise<boolean> {
  try {
    await stat(source);
  } catch {
    log.warn({ source }, 'zfaas-bridge not found: image functions will not run on this node (npm run bridge, or set ZFAAS_BRIDGE)');
    return false;
  }
  try {
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await chmod(dir, 0o755);
    const tmp = join(dir, `.${BRIDGE_FILE}.${process.pid}`);
    await copyFile(source, tmp);
    await chmod(tmp, 0o755);
    await rename(tmp, join(dir, BRIDGE_FILE));
    return true;
  } catch (e) {
    log.warn({ source, dir, err: errText(e) }, 'could not install zfaas-bridge: image functions will not run on this node');
    return false;
  }
}

// An image function runs as its image's user, whose uid the node may not know (a user named in the image):
// its container's socket is opened to every uid. Only that container mounts the socket's folder, and the
// folder holding every line is the node's alone (0700), so nobody else reaches it.
export async function openLineToImageUser(lineDir: string): Promise<void> {
  await chmod(join(lineDir, LINE_FILE), 0o666);
}

// How long loading may take: an image function's load waits for its server's readiness, however short its
// call timeout (a little longer, so that the bridge's own answer, naming the limit, comes first).
export const loadLimitMs = (fn: FunctionMeta, otherwiseMs: number): number =>
  fn.image ? Math.max(otherwiseMs, (fn.image.readiness + 5) * 1000) : otherwiseMs;
