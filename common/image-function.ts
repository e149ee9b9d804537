// What a container-image function is in a function's record (FunctionMeta.image): the image whose own
// server answers its calls over HTTP on `port` (the contract of Knative, Cloud Run and OpenFaaS's
// of-watchdog), and how long that server has to accept connections. Such a function names the runtime
// record IMAGE_RUNTIME, which the API writes when the first one is deployed: on a node its containers are
// made from the function's image, with zfaas-bridge (runtimes/image) as the loader (common/image-spec.ts).
import { z } from 'zod';
import { IMAGE_REF_EXPECTED, isImageRef } from './image-ref.js';
import type { Runtime } from './model.js';

export const IMAGE_PORT_DEFAULT = 8080;
export const READINESS_LIMITS = { min: 1, max: 300, default: 10 } as const; // seconds

export const ImageSpecSchema = z.object({
  ref: z.string().refine(isImageRef, { message: `must be ${IMAGE_REF_EXPECTED}` }),
  port: z.number().int().min(1).max(65535),
  readiness: z.number().int().min(READINESS_LIMITS.min).max(READINESS_LIMITS.max), // seconds
});
export type ImageSpec = z.infer<typeof ImageSpecSchema>;

// Where the node mounts the bridge (read-only) in an image function's container, and its file there.
export const BRIDGE_DIR = '/run/zfaas-bridge';
export const BRIDGE_FILE = 'zfaas-bridge';

// The runtime record every image function names. Its `image` is a placeholder: a node makes the
// function's containers from the function's own image (imageRuntime).
export const IMAGE_RUNTIME = 'zfaas-image';
export const IMAGE_RUNTIME_RECORD: Runtime = {
  name: IMAGE_RUNTIME,
  image: 'zfaas/image-function:none',
  path: '/run/zfaas-fn',
  dependencies: '',
  run: 'echo "an image function runs through zfaas-bridge, never this command" >&2; exit 1',
  loader: `${BRIDGE_DIR}/${BRIDGE_FILE}`,
};

// The runtime a node runs an image function with: the record, with the function's image.
export const imageRuntime = (runtime: Runtime, image: ImageSpec): Runtime => ({ ...runtime, image: image.ref });
