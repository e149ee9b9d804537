// Runtime images on this node's engine. A node that lacks an image pulls it from the private registry
// (registry/) and tags it with the name the runtime uses, once, however many calls ask at the same time.
import type Docker from 'dockerode';
import { errText, type Logger } from '../common/log.js';
import { parseImageRef } from '../common/image-ref.js';

export function splitImage(image: string): { repo: string; tag: string } {
  const at = image.lastIndexOf(':');
  const slash = image.lastIndexOf('/');
  return at > slash ? { repo: image.slice(0, at), tag: image.slice(at + 1) } : { repo: image, tag: 'latest' };
}

export class Images {
  private readonly present = new Set<string>();
  private readonly pulling = new Map<string, Promise<void>>();

  constructor(
    private readonly docker: Docker,
    private readonly registry: string | undefined,
    private readonly log: Logger,
  ) {}

  ensure(image: string): Promise<void> {
    if (this.present.has(image)) return Promise.resolve();
    let p = this.pulling.get(image);
    if (!p) {
      p = this.fetch(image)
        .then(() => void this.present.add(image))
        .finally(() => this.pulling.delete(image));
      this.pulling.set(image, p);
    }
    return p;
  }

  private async fetch(image: string): Promise<void> {
    const here = await this.docker
      .getImage(image)
      .inspect()
      .then(
        () => true,
        () => false,
      );
    if (here) return;
    // An image named with its registry (an image function's, e.g. localhost:5000/team/api:1) comes from there.
    const parsed = parseImageRef(image);
    if (typeof parsed !== 'string' && parsed.registry) return this.pullFrom(image, image);
    if (!this.registry) throw new Error(`image ${image} is not on this node and no registry is configured (--registry)`);
    const { repo, tag } = splitImage(image);
    await this.pullFrom(image, `${this.registry}/${repo}:${tag}`, { repo, tag });
  }

  // Pulls `ref` and, when the node knows the image by another name, tags it so.
  private async pullFrom(image: string, ref: string, as?: { repo: string; tag: string }): Promise<void> {
    const started = Date.now();
    try {
      const stream = await this.docker.pull(ref);
      await new Promise<void>((resolve, reject) =>
        this.docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())),
      );
      if (as) await this.docker.getImage(ref).tag(as);
    } catch (e) {
      throw new Error(`could not pull ${ref}: ${errText(e)}`);
    }
    this.log.info({ image, from: ref, ms: Date.now() - started }, 'image pulled from the registry');
  }
}

// Pushes images to the registry under the same names (zfaas push-images).
export async function pushImages(docker: Docker, registry: string, images: string[], log: Logger): Promise<void> {
  for (const image of images) {
    const { repo, tag } = splitImage(image);
    await docker.getImage(image).tag({ repo: `${registry}/${repo}`, tag });
    // The engine wants an auth header even for a registry without auth: an empty one for that address.
    const stream = await docker.getImage(`${registry}/${repo}:${tag}`).push({ authconfig: { serveraddress: registry } });
    await new Promise<void>((resolve, reject) =>
      docker.modem.followProgress(stream, (err: Error | null, out: { error?: string }[]) => {
        const failed = err ?? (out.find((o) => o.error) ? new Error(out.find((o) => o.error)!.error) : null);
        return failed ? reject(failed) : resolve();
      }),
    );
    log.info({ image, to: `${registry}/${repo}:${tag}` }, 'image pushed');
  }
}
