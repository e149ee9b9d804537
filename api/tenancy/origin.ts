// Whether a request may act as the operator on an API without a token (one that listens on loopback only).
// Any process of this machine may, but a web page may not: a page of another site can make the browser
// send simple requests (a form POST) to 127.0.0.1, and a name that resolves to 127.0.0.1 (DNS rebinding)
// makes a page of another site look same-origin. So a request a browser marks as coming from another
// origin (Origin, Sec-Fetch-Site), or sent to a Host that is not a loopback name, is refused.
import type { IncomingMessage } from 'node:http';

const LOOPBACK_NAMES = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

// The host name of a Host header, without its port ("[::1]:3000" -> "[::1]").
function hostName(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  const colon = host.lastIndexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}

// Why the request is not this machine's own, or null when it is.
export function foreignRequest(req: IncomingMessage): string | null {
  const host = req.headers.host;
  if (host !== undefined && !LOOPBACK_NAMES.test(hostName(host)))
    return `the Host header names ${JSON.stringify(host.slice(0, 100))}, not a loopback name (localhost, 127.0.0.1, [::1])`;
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `the browser says it comes from a ${site} page`;
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let same = false;
    try {
      same = origin !== 'null' && new URL(origin).host === host?.toLowerCase();
    } catch {
      same = false;
    }
    if (!same) return `it comes from the page of another origin (${JSON.stringify(origin.slice(0, 100))})`;
  }
  return null;
}
