// Where the tests find Google's Functions Framework for Node.js to vendor in a function's archive: this
// repository's devDependency, whose folder is what `npm install` puts in an archive's node_modules.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

/** The folder of @google-cloud/functions-framework, as node_modules holds it. */
export function nodeFramework(): string {
  const entry = createRequire(import.meta.url).resolve('@google-cloud/functions-framework');
  return dirname(dirname(dirname(entry))); // its entry is build/src/index.js
}
