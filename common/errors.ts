// The one-line text of any thrown value (kept apart from log.ts so that small processes need not load pino).
export const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

// A mistake in how zfaas was started (flags, environment): one clear line and exit code 2, no stack.
export class UsageError extends Error {}

// What a request asked for is not there (HTTP 404 at the API; NOT_FOUND from the DB service).
export class NotFoundError extends Error {}
