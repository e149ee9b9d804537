// A container image reference, checked against Docker's grammar (distribution/reference): an optional
// registry host (a name with a dot or a port, or localhost), a path of lower-case components, then a tag
// and/or a sha256 digest. Container-image functions name their image this way; a reference that does not
// parse is refused at deploy with what was expected, never sent to an engine.
export const IMAGE_REF_MAX = 255;

const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const HOST = '(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]{1,5})?';
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = 'sha256:[a-f0-9]{64}';
const REF_RE = new RegExp(`^(?:(${HOST})/)?(${COMPONENT}(?:/${COMPONENT})*)(?::(${TAG}))?(?:@(${DIGEST}))?$`);

export interface ImageRef {
  registry?: string; // the host (and port) it is pulled from; unset: the engine's default (or zfaas's registry)
  path: string; // e.g. library/nginx, acme/api
  tag?: string;
  digest?: string;
}

export const IMAGE_REF_EXPECTED = 'an image reference such as nginx, acme/api:1.2, registry.example.com:5000/team/api@sha256:<64 hex>';

// The reference's parts, or why it is not one.
export function parseImageRef(ref: string): ImageRef | string {
  if (ref.length === 0) return `an empty image reference: expected ${IMAGE_REF_EXPECTED}`;
  if (ref.length > IMAGE_REF_MAX) return `the image reference is longer than ${IMAGE_REF_MAX} characters`;
  const m = REF_RE.exec(ref);
  if (!m) return `${JSON.stringify(ref.slice(0, 80))} is not an image reference: expected ${IMAGE_REF_EXPECTED} (the path in lower case)`;
  const [, , , tag, digest] = m;
  let [, host, path] = m;
  // The first part is a registry only when it looks like a host: a dot, a port, or localhost (as Docker reads it).
  if (host !== undefined && !/[.:]/.test(host) && host !== 'localhost') {
    if (!new RegExp(`^${COMPONENT}$`).test(host))
      return `${JSON.stringify(ref.slice(0, 80))} is not an image reference: ${JSON.stringify(host)} is neither a registry host nor a lower-case path component`;
    path = `${host}/${path!}`;
    host = undefined;
  }
  if (host !== undefined && /:(\d+)$/.test(host) && Number(/:(\d+)$/.exec(host)![1]) > 65535)
    return `${JSON.stringify(ref.slice(0, 80))} is not an image reference: its registry port is above 65535`;
  return { ...(host !== undefined ? { registry: host } : {}), path: path!, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

export const isImageRef = (ref: string): boolean => typeof parseImageRef(ref) !== 'string';
