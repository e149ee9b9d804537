// `zfaas deploy NAME ./dir` for a folder with a Dockerfile, as `faas-cli up` does: the image is built on
// the engine the CLI reaches (DOCKER_HOST, else the local socket) with the build's progress printed, tagged
// zfaas-fn/NAME:<the first 12 hex of its image id> (the same contents, the same tag), and pushed to
// --registry when one is given (the nodes pull it from there); without one, the nodes are taken to use this
// same engine, as with `zfaas up`. The build's messages are read by buildEvent, a pure function.
import Docker from 'dockerode';
import { create as tarCreate } from 'tar';
import { errText } from '../../common/errors.js';

export const BUILT_LABEL = 'zfaas.function';

// One message of the engine's build or push stream.
export interface BuildMessage {
  stream?: string;
  status?: string;
  progress?: string;
  id?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

// What a message says: lines to print, a failure, or the built image's id.
export function buildEvent(m: BuildMessage): { lines: string[]; error?: string; imageId?: string } {
  if (m.error || m.errorDetail?.message) return { lines: [], error: (m.error ?? m.errorDetail?.message ?? '').trim() };
  if (m.aux?.ID) return { lines: [], imageId: m.aux.ID };
  if (typeof m.stream === 'string') {
    const lines = m.stream
      .split('\n')
      .map((l) => l.trimEnd())
      .filter((l) => l !== '');
    return { lines };
  }
  // Pull and push progress: one line per layer event, without the moving bar.
  if (m.status) return { lines: [`${m.id ? `${m.id}: ` : ''}${m.status}`] };
  return { lines: [] };
}

// A function name as an image repository's last part (lower case, runs of other characters as one "-").
export const repoPart = (name: string): string =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '') || 'fn';

// The tag a built image gets: its name and the start of its id.
export const builtTag = (name: string, imageId: string): string =>
  `zfaas-fn/${repoPart(name)}:${imageId.replace(/^sha256:/, '').slice(0, 12)}`;

function follow(docker: Docker, stream: NodeJS.ReadableStream, say: (line: string) => void): Promise<string | undefined> {
  let imageId: string | undefined;
  let failed: string | undefined;
  return new Promise((resolve, reject) =>
    docker.modem.followProgress(
      stream,
      (err: Error | null) => (err ? reject(err) : failed ? reject(new Error(failed)) : resolve(imageId)),
      (m: BuildMessage) => {
        const e = buildEvent(m);
        for (const l of e.lines) say(l);
        if (e.error) failed = e.error;
        if (e.imageId) imageId = e.imageId;
      },
    ),
  );
}

export interface Built {
  ref: string; // what the nodes run: zfaas-fn/NAME:ID, or REGISTRY/zfaas-fn/NAME:ID once pushed
  imageId: string;
}

export async function buildImage(dir: string, name: string, o: { registry?: string; say: (line: string) => void }): Promise<Built> {
  const docker = new Docker();
  const context = tarCreate({ cwd: dir, portable: true }, ['.']);
  let imageId: string | undefined;
  try {
    const stream = await docker.buildImage(context as unknown as NodeJS.ReadableStream, {
      t: `zfaas-fn/${repoPart(name)}:latest`,
      labels: { [BUILT_LABEL]: name },
    });
    imageId = await follow(docker, stream, o.say);
  } catch (e) {
    throw new Error(`the image of ${dir} did not build: ${errText(e)}`);
  }
  imageId ??= (await docker.getImage(`zfaas-fn/${repoPart(name)}:latest`).inspect()).Id;
  const local = builtTag(name, imageId);
  const [repo, tag] = local.split(':') as [string, string];
  await docker.getImage(imageId).tag({ repo, tag });
  if (!o.registry) return { ref: local, imageId };
  const remote = `${o.registry}/${repo}`;
  await docker.getImage(imageId).tag({ repo: remote, tag });
  try {
    // The engine wants an auth header even for a registry without auth: an empty one for that address.
    const stream = await docker.getImage(`${remote}:${tag}`).push({ authconfig: { serveraddress: o.registry } });
    await follow(docker, stream, o.say);
  } catch (e) {
    throw new Error(`could not push ${remote}:${tag}: ${errText(e)}`);
  }
  return { ref: `${remote}:${tag}`, imageId };
}
