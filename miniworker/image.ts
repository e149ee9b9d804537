// The create options of a container-image function's container (common/image-spec.ts): the image's config
// read from the engine (its entrypoint, command, user and working folder, which the bridge takes over), and
// a clear refusal when the node lacks what such a container needs.
import type Docker from 'dockerode';
import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { BRIDGE_FILE } from '../common/image-function.js';
import { imageConfigOf, imageContainer } from '../common/image-spec.js';
import type { Owner } from '../common/container-spec.js';
import { errText } from '../common/errors.js';
import type { Plan } from '../protocol/worker.js';

export async function imageCreateOptions(docker: Docker, plan: Plan, owner: Owner): Promise<Docker.ContainerCreateOptions> {
  const fn = plan.fn;
  if (!fn?.image) throw new Error('not an image function');
  if (!plan.lineDir) throw new Error('an image function needs the node line');
  if (!plan.bridgeDir) throw new Error('this node has no folder for zfaas-bridge');
  await access(join(plan.bridgeDir, BRIDGE_FILE), constants.X_OK).catch(() => {
    throw new Error(`this node has no zfaas-bridge to run image functions with (build it: npm run bridge, or set ZFAAS_BRIDGE)`);
  });
  const image = fn.image;
  const inspect = await docker
    .getImage(image.ref)
    .inspect()
    .catch((e: unknown) => {
      throw new Error(`image ${image.ref} is not on this node: ${errText(e)}`);
    });
  const cfg = imageConfigOf(inspect);
  if (cfg.entrypoint.length + cfg.cmd.length === 0)
    throw new Error(`image ${image.ref} has no ENTRYPOINT or CMD: nothing to start its server with`);
  return imageContainer(
    { name: plan.id, fn: { ...fn, image }, runtime: plan.runtime, lineDir: plan.lineDir, bridgeDir: plan.bridgeDir },
    cfg,
    owner,
  );
}
