// The container of a container-image function (common/image-function.ts): made from the function's own
// image with the sandbox every function gets (hostConfig: limits, caps dropped, read-only root with /tmp,
// no network unless the function asks), the node's line and zfaas-bridge mounted read-only, and the bridge
// as its entrypoint. The image's own entrypoint and command (read from its config by the miniworker) go to
// the bridge, which starts them as the server; its WORKDIR and ENV stay. Its USER is kept when it is not
// root; an image that runs as root (or names no user) runs as zfaas's usual uid instead.
import type Docker from 'dockerode';
import { functionEnv, hostConfig, labels, lineBind, limitsOf, SECRETS_TMPFS, UID, USER, type Owner } from './container-spec.js';
import { BRIDGE_DIR, BRIDGE_FILE, type ImageSpec } from './image-function.js';
import type { FunctionMeta, Runtime } from './model.js';
import { LINE_DIR, LINE_ENV, LINE_FILE, SECRETS_DIR } from '../protocol/loader.js';

// What the node reads from the image's config (docker image inspect: Config).
export interface ImageConfig {
  entrypoint: string[];
  cmd: string[];
  user: string; // "", "root", "1001", "1001:1001", "app", "app:app"
  workingDir: string;
}

// The image's config as dockerode's inspect answers it (fields may be null or missing).
export function imageConfigOf(inspect: {
  Config?: { Entrypoint?: unknown; Cmd?: unknown; User?: unknown; WorkingDir?: unknown };
}): ImageConfig {
  const c = inspect.Config ?? {};
  const list = (v: unknown): string[] =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' && v ? ['/bin/sh', '-c', v] : [];
  return {
    entrypoint: list(c.Entrypoint),
    cmd: list(c.Cmd),
    user: typeof c.User === 'string' ? c.User : '',
    workingDir: typeof c.WorkingDir === 'string' ? c.WorkingDir : '',
  };
}

// Who the container runs as, and the uid its secrets folder belongs to: the image's USER unless it is
// root (by name or uid 0) or unset; a user named (not numbered) keeps zfaas's uid for its secrets folder.
export function runAs(imageUser: string): { user: string; secretsUid: number } {
  const [who = '', group] = imageUser.trim().split(':');
  if (who === '' || who === 'root' || who === '0') return { user: USER, secretsUid: UID };
  if (/^\d+$/.test(who)) return { user: group !== undefined ? `${who}:${group}` : `${who}:${who}`, secretsUid: Number(who) };
  return { user: imageUser.trim(), secretsUid: UID };
}

export interface ImageContainer {
  name: string;
  fn: FunctionMeta & { image: ImageSpec };
  runtime: Runtime;
  lineDir: string;
  bridgeDir: string; // the host folder holding zfaas-bridge
}

export function imageContainer(c: ImageContainer, cfg: ImageConfig, owner: Owner): Docker.ContainerCreateOptions {
  const { user, secretsUid } = runAs(cfg.user);
  const argv = [...cfg.entrypoint, ...cfg.cmd];
  const env: Record<string, string> = {
    ...functionEnv(c.fn, c.runtime),
    [LINE_ENV]: `${LINE_DIR}/${LINE_FILE}`,
    PORT: String(c.fn.image.port),
    ZFAAS_BRIDGE_CMD: JSON.stringify(argv),
    ZFAAS_BRIDGE_READINESS: String(c.fn.image.readiness),
  };
  const secrets = c.fn.settings.secrets.length > 0;
  const host = hostConfig([lineBind(c.lineDir), `${c.bridgeDir}:${BRIDGE_DIR}:ro`], limitsOf(c.fn), { secrets });
  if (secrets && host.Tmpfs) host.Tmpfs[SECRETS_DIR] = SECRETS_TMPFS.replace(/uid=\d+,gid=\d+/, `uid=${secretsUid},gid=${secretsUid}`);
  return {
    name: c.name,
    Image: c.fn.image.ref,
    Entrypoint: [`${BRIDGE_DIR}/${BRIDGE_FILE}`],
    Cmd: [],
    ...(cfg.workingDir ? { WorkingDir: cfg.workingDir } : {}),
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    User: user,
    Labels: labels('warm', owner, { 'zfaas.function': c.fn.functionName, 'zfaas.image': c.fn.image.ref }),
    Tty: false,
    AttachStdout: true,
    AttachStderr: true,
    NetworkDisabled: !c.fn.settings.network,
    HostConfig: host,
  };
}
