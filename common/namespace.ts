// Namespaces: every function, call, schedule and secret belongs to one. Inside the services a name is
// qualified by its namespace ("team-a~resize"); the `default` namespace keeps bare names, so the data of
// an installation from before namespaces is already in place and the seed's routes see what they saw.
// "~" is in no function or runtime name (NAME_RE), so a qualified name never collides with a bare one.
import { z } from 'zod';

export const DEFAULT_NAMESPACE = 'default';
export const NS_SEP = '~';

// As a DNS label (and a Kubernetes namespace): it appears in URLs, metrics labels and file names.
export const NAMESPACE_RE = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;
export const namespaceSchema = z
  .string()
  .regex(NAMESPACE_RE, 'must be 1-32 characters: lower-case letters, digits and "-", starting and ending with a letter or digit');

export const qualify = (namespace: string, name: string): string =>
  namespace === DEFAULT_NAMESPACE ? name : `${namespace}${NS_SEP}${name}`;

// The namespace and the bare name of a qualified name.
export function splitName(qualified: string): { namespace: string; name: string } {
  const i = qualified.indexOf(NS_SEP);
  return i < 0
    ? { namespace: DEFAULT_NAMESPACE, name: qualified }
    : { namespace: qualified.slice(0, i), name: qualified.slice(i + NS_SEP.length) };
}

export const namespaceOf = (qualified: string): string => splitName(qualified).namespace;
export const bareName = (qualified: string): string => splitName(qualified).name;
