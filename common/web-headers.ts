// What a function's web answer may carry, and what the platform adds to every answer of a function's web
// path, so that function content never acts as the API's or the dashboard's origin.
//
// Every answer under /function/... and /ns/NS/function/... (the function's own, and the platform's errors
// there) carries `Content-Security-Policy: sandbox allow-scripts allow-forms allow-popups` and
// `X-Content-Type-Options: nosniff`. The sandbox gives a page an opaque origin: its scripts run and its
// forms and popups work (a function's own web app keeps working), but it reads no storage, cookie or
// service worker of the origin it was served from, and what it fetches from the API is cross-origin. A
// CSP the function sets is sent as well, as a policy of its own: browsers enforce every policy, so it can
// only make the page stricter, never lift the sandbox. nosniff keeps a body the function labels as text or
// JSON from being read as HTML or script.
//
// Headers a function may not set are dropped: those that act for the whole origin (or host) rather than
// for the one response, and the platform's own.
//   Service-Worker-Allowed         widens a service worker's scope to the origin (the dashboard's pages)
//   Clear-Site-Data                wipes the origin's storage: the dashboard's stored token, other functions'
//   Strict-Transport-Security, Public-Key-Pins(-Report-Only), Expect-CT
//                                  pin the whole host (and its subdomains) to a transport or to keys
//   Alt-Svc                        sends the origin's later connections to another endpoint
//   Origin-Agent-Cluster           changes how every page of the origin is grouped in the browser
//   NEL, Report-To                 register origin-wide reporting: URLs of other requests (the API's) would
//                                  go to the function's endpoint
//   Accept-CH, Accept-CH-Lifetime, Critical-CH
//                                  origin-wide client-hint preferences, kept by the browser
//   Set-Login                      the origin's federated login state
//   X-Zfaas-*, Idempotent-Replayed the platform's own answers about the call: a function cannot fake them
// Kept, since they govern only the function's own response: Set-Cookie (the API keeps no cookie: its
// credentials are the Authorization header and the dashboard's storage, which the sandbox keeps from the
// page; functions served from one host share that host's cookies, whatever the port, so give functions a
// host name of their own when their cookies must be apart), Access-Control-* (they let other origins read
// this response only; the API answers no cross-origin request with credentials), Content-Security-Policy
// and its -Report-Only form (added to ours, never replacing it), Link, Location, Cache-Control and the rest.
export const SANDBOX_CSP = 'sandbox allow-scripts allow-forms allow-popups';

// Lower-case names; `x-zfaas-` names are matched by prefix (isForbiddenHeader).
export const FORBIDDEN_HEADERS: ReadonlySet<string> = new Set([
  'service-worker-allowed',
  'clear-site-data',
  'strict-transport-security',
  'public-key-pins',
  'public-key-pins-report-only',
  'expect-ct',
  'alt-svc',
  'origin-agent-cluster',
  'nel',
  'report-to',
  'accept-ch',
  'accept-ch-lifetime',
  'critical-ch',
  'set-login',
  'idempotent-replayed',
]);

export const isForbiddenHeader = (lowerName: string): boolean => FORBIDDEN_HEADERS.has(lowerName) || lowerName.startsWith('x-zfaas-');

// The headers every answer of a function's web path carries, whoever wrote it.
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': SANDBOX_CSP,
  'x-content-type-options': 'nosniff',
};

export type HeaderValues = Record<string, string | string[]>;

// A function's response headers (names in lower case) as the caller gets them: forbidden ones dropped, the
// sandbox added after any policy of the function's own, and nosniff whatever the function said.
export function isolate(headers: HeaderValues): HeaderValues {
  const out: HeaderValues = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (isForbiddenHeader(lower) || lower === 'x-content-type-options') continue;
    if (lower === 'content-security-policy') {
      out[lower] = [...(Array.isArray(value) ? value : [value]), ...toArray(out[lower])];
      continue;
    }
    out[lower] = value;
  }
  out['content-security-policy'] = [...toArray(out['content-security-policy']), SANDBOX_CSP];
  out['x-content-type-options'] = 'nosniff';
  return out;
}

const toArray = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
