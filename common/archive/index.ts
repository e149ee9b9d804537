// The one place that checks and unpacks uploaded function archives (.tar.gz, .tar, .zip).
//
// Uploads are untrusted. Every archive is walked once to validate it completely (names, entry types,
// link targets, sizes, entry count) before anything is written; extraction then walks it a second
// time, re-applying the same checks, and writes only plain directories and files. Hardlinks and
// symlinks are created last, once every file is in place, so nothing is ever written through a link.
//
// This file is what the server side uses: the API inspects uploads, instances extract them. Behind
// it: format.ts (magic bytes), names.ts (one name or link target), checker.ts (the whole tree),
// tar.ts and zip.ts (the walkers), inspect.ts, extract.ts, and the shared types.ts and messages.ts.
// Packing a directory is the CLI's (cli/pack/).
export { extractArchive } from './extract.js';
export { detectFormat } from './format.js';
export { inspectArchive } from './inspect.js';
export { ArchiveError, DEFAULT_LIMITS, type ArchiveFormat, type ArchiveLimits, type ArchiveSummary } from './types.js';
