// The image side of `zfaas deploy`: `--image REF` deploys an image the nodes' engine has (or pulls from
// the registry REF names); a folder with a Dockerfile (and no --runtime) is built into an image first
// (cli/client/image-build.ts), its progress printed, then deployed. Both go to POST
// /registerImageFunction/NAME with the settings the archive form sends.
import { access, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseImageRef } from '../../common/image-ref.js';
import { READINESS_LIMITS } from '../../common/image-function.js';
import { readTimeout } from '../../common/units.js';
import type { FunctionMeta } from '../../common/model.js';
import { UsageError } from '../client/errors.js';
import { buildImage } from '../client/image-build.js';
import type { ApiClient } from '../client/api.js';
import type { Output } from '../client/output.js';

export interface ImageOpts {
  image?: string;
  port?: number;
  readiness?: string;
  registry?: string;
}

// Whether `path` is a folder holding a Dockerfile.
export async function hasDockerfile(path: string | undefined): Promise<boolean> {
  if (!path) return false;
  try {
    if (!(await stat(path)).isDirectory()) return false;
    await access(join(path, 'Dockerfile'));
    return true;
  } catch {
    return false;
  }
}

// The settings' multipart fields as a JSON body: a field given more than once (env) becomes a list.
export function fieldsBody(fields: ReadonlyArray<readonly [string, string]>): Record<string, string | string[]> {
  const body: Record<string, string | string[]> = {};
  for (const [k, v] of fields) {
    const had = body[k];
    body[k] = had === undefined ? v : Array.isArray(had) ? [...had, v] : [had, v];
  }
  return body;
}

// --readiness as seconds (a duration: 10, 10s, 1m), within the limits the API holds it to.
export function readinessSeconds(v: string): number {
  const r = readTimeout(v);
  const { min, max } = READINESS_LIMITS;
  if (!r.ok || !Number.isInteger(r.value) || r.value < min || r.value > max)
    throw new UsageError(`--readiness: expected a whole number of seconds from ${min} to ${max} (e.g. 10s, 1m), got ${JSON.stringify(v)}`);
  return r.value;
}

export async function deployImage(
  api: ApiClient,
  out: Output,
  name: string,
  path: string | undefined,
  o: ImageOpts,
  fields: ReadonlyArray<readonly [string, string]>,
): Promise<FunctionMeta> {
  let ref = o.image;
  if (ref !== undefined) {
    if (path !== undefined) throw new UsageError('give either --image REF or a path, not both');
    const parsed = parseImageRef(ref);
    if (typeof parsed === 'string') throw new UsageError(`--image: ${parsed}`);
  } else {
    out.note(
      `building the image of ${path} (its Dockerfile) on the local engine${process.env.DOCKER_HOST ? ` (${process.env.DOCKER_HOST})` : ''}`,
    );
    const built = await buildImage(path!, name, { registry: o.registry, say: (l) => out.note(l) });
    ref = built.ref;
    out.note(`built ${ref}${o.registry ? ' (pushed)' : ''}`);
  }
  const body: Record<string, unknown> = { ...fieldsBody(fields), image: ref };
  if (o.port !== undefined) body.port = o.port;
  if (o.readiness !== undefined) body.readiness = readinessSeconds(o.readiness);
  return api.deployImage(name, body);
}
